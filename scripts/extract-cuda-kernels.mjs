// Turns the CUDAExecutionProvider section of onnxruntime's docs/OperatorKernels.md (kept verbatim in
// test/fixtures/ort-1.30/OperatorKernels.cuda.md) into test/fixtures/ort-1.30/cuda-kernels.json, the table that
// test/runtime/cuda-kernels.test.ts checks our graphs against.
//
//   node scripts/extract-cuda-kernels.mjs          writes the JSON
//   node scripts/extract-cuda-kernels.mjs --check  exits 1 if the committed JSON differs from what it would write
//
// The markdown table has one row per op and one continuation row per further opset range:
//   |Add|*in* A:**T**<br> *in* B:**T**<br> *out* C:**T**|14+|**T** = tensor(bfloat16), tensor(double), ...|
//   |||13|**T** = ...|
// "14+" is a kernel registered from opset 14 on with no end, "13" one registered for exactly 13, "[7, 12]" a range.
// The parameter column may list several signatures ("<br><br>or<br><br>"): the ones of the op's schema versions.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join('test', 'fixtures', 'ort-1.30');
const mdPath = join(dir, 'OperatorKernels.cuda.md');
const jsonPath = join(dir, 'cuda-kernels.json');

const SOURCE = {
  repository: 'microsoft/onnxruntime',
  path: 'docs/OperatorKernels.md',
  commit: '8f063305aacd23aadf77cda4c52e0592a02a7161',
  section: 'Operators implemented by CUDAExecutionProvider (characters 94648-166229 of the 236210-character file)',
  extract: 'test/fixtures/ort-1.30/OperatorKernels.cuda.md (verbatim)',
  note:
    'The only version of the file in the stored copy of the repository that could be read here; it is older than the v1.30.0 tag ' +
    '(its newest kernel ranges start at opset 19, and it predates the CUDA ArgMax/ArgMin kernels for opset 12+). ' +
    'Kernels that later releases added, where a merged upstream change shows them, are listed under "amendments", separately.',
};

/**
 * Kernels missing from the stored table that a merged upstream change added before 1.30. Only what is shown by the
 * change is claimed (types beyond the ones our graphs need are left out when the change does not list them).
 */
const AMENDMENTS = [
  {
    domain: 'ai.onnx',
    op: 'ArgMax',
    since: 13,
    end: null,
    types: { T: ['float'] },
    // Int attributes the node must have for the kernel to take it; an absent attribute counts as 0, its ONNX default.
    attributes: { select_last_index: 0 },
    condition: 'select_last_index = 0 (for select_last_index = 1 the CUDA EP leaves the node to the CPU EP)',
    source:
      'microsoft/onnxruntime pull request #22713 "[CUDA/ROCm] Conditionally support ArgMax and ArgMin for opset 12 and above" ' +
      '(merged; opened 2024-11-04, so in releases from 1.21 on). It registers the existing cuDNN ArgMax kernel for opsets 12 and 13+; ' +
      'only float, the type our graphs use, is listed here.',
  },
];

/** tensor(float) -> float, seq(tensor(float)) -> seq(float); other spellings are kept as they are. */
function shortType(t) {
  const tensor = /^tensor\(([a-z0-9]+)\)$/.exec(t);
  if (tensor) return tensor[1];
  const seq = /^seq\(tensor\(([a-z0-9]+)\)\)$/.exec(t);
  if (seq) return `seq(${seq[1]})`;
  return t;
}

function parseVersion(cell) {
  let m = /^(\d+)\+$/.exec(cell);
  if (m) return { since: Number(m[1]), end: null };
  m = /^(\d+)$/.exec(cell);
  if (m) return { since: Number(m[1]), end: Number(m[1]) };
  m = /^\[(\d+), (\d+)\]$/.exec(cell);
  if (m) return { since: Number(m[1]), end: Number(m[2]) };
  throw new Error(`unreadable opset version cell '${cell}'`);
}

/** '**T** = tensor(float), tensor(double)<br/> **T1** = tensor(bool)' -> { T: ['float', 'double'], T1: ['bool'] } */
function parseTypes(cell) {
  const types = {};
  for (const part of cell.split('<br/>')) {
    const m = /^\*\*([^*]+)\*\* = (.+)$/.exec(part.trim());
    if (!m) throw new Error(`unreadable type constraint '${part}'`);
    types[m[1]] = m[2].split(', ').map(shortType);
  }
  return types;
}

/**
 * '*in* X:**T**<br> *in* shape:**tensor(int64)**<br> *out* Y:**T**' -> { in: ['T', 'tensor(int64)'], out: ['T'] };
 * a fixed type (written with parentheses) stays as the doc writes it.
 */
function parseSignatures(cell) {
  return cell.split('<br><br>or<br><br>').map((variant) => {
    const sig = { in: [], out: [] };
    for (const item of variant.split('<br>')) {
      const m = /^\*(in|out)\* ([^:]+):\*\*([^*]+)\*\*$/.exec(item.trim());
      if (!m) throw new Error(`unreadable parameter '${item}'`);
      sig[m[1]].push(m[3]);
    }
    return sig;
  });
}

function parseCudaSection(text) {
  const domains = {};
  let domain;
  let op;
  for (const line of text.split('\n')) {
    const dm = /^\|\*\*Operator Domain:\*\* \*([^*]+)\*\|\|\|\|$/.exec(line);
    if (dm) {
      domain = domains[dm[1]] = {};
      op = undefined;
      continue;
    }
    if (!line.startsWith('|') || line === '| |' || line.startsWith('| Op Name') || line.startsWith('|---')) continue;
    const cells = line.split('|');
    if (cells.length !== 6 || cells[5] !== '') throw new Error(`unexpected row '${line}'`);
    const [, name, params, version, types] = cells;
    if (domain === undefined) throw new Error(`row before any domain: '${line}'`);
    if (name !== '') {
      op = domain[name] = { signatures: parseSignatures(params), kernels: [] };
    } else if (op === undefined || params !== '') {
      throw new Error(`continuation row without an op: '${line}'`);
    }
    op.kernels.push({ ...parseVersion(version), types: parseTypes(types) });
  }
  return domains;
}

/** One op per line: small diffs when the table is refreshed. */
function render(domains) {
  const lines = ['{'];
  lines.push(`"source": ${JSON.stringify(SOURCE)},`);
  lines.push(
    `"format": ${JSON.stringify(
      'domains[domain][op] = { signatures: [{ in, out }] (type-constraint name per input/output, one entry per documented signature; a name with parentheses is a fixed type), kernels: [{ since, end (null: open-ended), types: { constraint: [short dtype names] } }] }; dtype names: tensor(float) -> float, seq(tensor(float)) -> seq(float)',
    )},`,
  );
  lines.push('"domains": {');
  const domainNames = Object.keys(domains);
  domainNames.forEach((d, di) => {
    lines.push(`${JSON.stringify(d)}: {`);
    const ops = Object.keys(domains[d]);
    ops.forEach((o, oi) => lines.push(`${JSON.stringify(o)}: ${JSON.stringify(domains[d][o])}${oi < ops.length - 1 ? ',' : ''}`));
    lines.push(`}${di < domainNames.length - 1 ? ',' : ''}`);
  });
  lines.push('},');
  lines.push('"amendments": [');
  AMENDMENTS.forEach((a, i) => lines.push(`${JSON.stringify(a)}${i < AMENDMENTS.length - 1 ? ',' : ''}`));
  lines.push(']');
  lines.push('}');
  return lines.join('\n') + '\n';
}

const json = render(parseCudaSection(readFileSync(mdPath, 'utf8')));
if (process.argv.includes('--check')) {
  const committed = readFileSync(jsonPath, 'utf8');
  if (committed !== json) {
    console.error(`${jsonPath} is not what ${mdPath} gives: run node scripts/extract-cuda-kernels.mjs`);
    process.exit(1);
  }
} else {
  writeFileSync(jsonPath, json);
  const parsed = JSON.parse(json);
  for (const [d, ops] of Object.entries(parsed.domains)) console.log(`${d}: ${Object.keys(ops).length} ops`);
}
