/**
 * `eye4eye batch` on the tiny model: a CSV of four rows (one with a broken image) is interrupted after its second
 * computed row, resumes and completes with a manifest; rows sharing an image reuse its inversion; a row that failed
 * while computing is skipped on a rerun and retried with --retry-failed; JSON Lines rows; malformed files and bad
 * rows give messages naming the line, column and value.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBatchCommand, type BatchCommandIo } from '../../src/cli/batch-command.js';
import { readBatchFile } from '../../src/batch/batch-file.js';
import { parseRows } from '../../src/batch/batch-rows.js';
import type { Manifest } from '../../src/batch/manifest.js';
import { repoRoot, samTinyModelDir, sd1TinyModelDir } from '../helpers/paths.js';

const examples = join(repoRoot, 'examples');
let root: string;
let cache: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-batch-'));
  cache = join(root, 'cache');
  for (const f of ['bird-blue.png', 'bird-red.png', 'bird-blue-mask.png', 'bird-red-mask.png']) copyFileSync(join(examples, f), join(root, f));
  writeFileSync(join(root, 'broken.png'), 'this is not a picture');
});
after(() => rmSync(root, { recursive: true, force: true }));

async function batch(args: readonly string[], extra: Partial<BatchCommandIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runBatchCommand([...args, '--model', sd1TinyModelDir, '--cache-dir', cache], {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    isTTY: false,
    ...extra,
  });
  return { code, out, err };
}

const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
const byId = (m: Manifest, id: string) => m.rows.find((r) => r.id === id)!;

test('a CSV batch is interrupted after two rows, resumes, and completes with a manifest; a shared image reuses its inversion', async () => {
  const file = join(root, 'pairs.csv');
  writeFileSync(
    file,
    [
      'id,structure,appearance,domain,size,steps,structure-mask,seed',
      'blue-red,bird-blue.png,bird-red.png,bird,64,4,,0',
      'red-red,bird-red.png,bird-red.png,bird,64,4,,0',
      'bad,broken.png,bird-red.png,bird,64,4,,0',
      'masked,bird-blue.png,bird-blue.png,bird,64,4,bird-blue-mask.png,1',
      '',
    ].join('\n'),
  );
  const out = join(root, 'pairs-out');
  const stop = new AbortController();
  let finished = 0;
  const first = await batch([file, '--out', out], {
    stop: stop.signal,
    onRowFinished: () => {
      finished += 1;
      if (finished === 2) stop.abort();
    },
  });
  assert.equal(first.code, 130, first.err);
  assert.match(first.err, /4 rows: 3 to compute, 0 already done, 1 failed/);
  assert.match(first.err, /row 1 of 3 \(blue-red, line 2\)/);
  assert.match(first.err, /ETA \d+:\d\d/);
  assert.match(first.err, /blue-red: transfer: \d+\/\d+/, 'per-row phases');
  let m = manifestOf(out);
  assert.deepEqual(
    m.rows.map((r) => [r.row, r.id, r.status]),
    [
      [1, 'blue-red', 'done'],
      [2, 'red-red', 'done'],
      [3, 'bad', 'failed'],
      [4, 'masked', 'pending'],
    ],
  );
  assert.match(byId(m, 'bad').error!, /row 3 \(line 4\): ImageError .*broken\.png/);
  // Row 2 inverts bird-red as the appearance again, with row 1's settings: taken from the cache.
  assert.deepEqual(byId(m, 'blue-red').inversionCache, { app: 'miss', struct: 'miss' });
  assert.deepEqual(byId(m, 'red-red').inversionCache, { app: 'hit', struct: 'miss' });
  assert.equal(m.summary.inversionCacheHits, 1);
  assert.ok(existsSync(join(out, 'blue-red', 'result.png')) && existsSync(join(out, 'red-red', 'run.json')));
  assert.ok(!existsSync(join(out, 'masked')), 'a pending row has no folder');
  const run1 = JSON.parse(readFileSync(join(out, 'blue-red', 'run.json'), 'utf8')) as { batch: { optionsHash: string }; command: string };
  assert.equal(run1.command, 'batch');
  assert.equal(run1.batch.optionsHash, byId(m, 'blue-red').optionsHash);
  const mtime = readFileSync(join(out, 'blue-red', 'result.png'));

  const second = await batch([file, '--out', out]);
  assert.equal(second.code, 1, 'a failed row remains');
  assert.match(second.err, /1 to compute, 2 already done, 1 failed \(retry them with --retry-failed\)/);
  m = manifestOf(out);
  assert.deepEqual(
    m.rows.map((r) => r.status),
    ['done', 'done', 'failed', 'done'],
  );
  assert.equal(byId(m, 'blue-red').skipped, true);
  assert.ok(byId(m, 'masked').seconds! > 0);
  assert.ok(existsSync(join(out, 'masked', 'mask-structure.png')));
  assert.deepEqual(readFileSync(join(out, 'blue-red', 'result.png')), mtime, 'a done row is not redone');

  // A changed option changes the row's hash: that row (only) is computed again, over its earlier output.
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(
      'masked,bird-blue.png,bird-blue.png,bird,64,4,bird-blue-mask.png,1',
      'masked,bird-blue.png,bird-blue.png,bird,64,4,bird-blue-mask.png,2',
    ),
  );
  const third = await batch([file, '--out', out]);
  assert.match(third.err, /1 to compute, 2 already done/);
  assert.equal(manifestOf(out).rows[3]!.status, 'done');
});

test('a row that fails while computing is kept failed on a rerun and retried with --retry-failed', async () => {
  const file = join(root, 'retry.jsonl');
  writeFileSync(
    file,
    [
      JSON.stringify({ id: 'one', structure: 'bird-blue.png', appearance: 'bird-red.png', domain: 'bird', size: 64, numSteps: 4 }),
      JSON.stringify({ id: 'two', structure: 'bird-red.png', appearance: 'bird-blue.png', domain: 'bird', size: 64, steps: 4 }),
    ].join('\n'),
  );
  const out = join(root, 'retry-out');
  const stop = new AbortController();
  const start = await batch([file, '--out', out], { stop: stop.signal, onRowFinished: () => stop.abort() });
  assert.equal(start.code, 130, start.err);
  // Row two's folder now holds a file eye4eye did not write: claiming it fails at compute time.
  mkdirSync(join(out, 'two'), { recursive: true });
  writeFileSync(join(out, 'two', 'notes.txt'), 'mine');
  const first = await batch([file, '--out', out]);
  assert.equal(first.code, 1, first.err);
  let m = manifestOf(out);
  assert.equal(byId(m, 'one').status, 'done');
  assert.equal(byId(m, 'two').status, 'failed');
  assert.match(byId(m, 'two').error!, /row 2 \(line 2\): FileError .*holds files that are not from an eye4eye run \(notes\.txt\)/);
  assert.equal(byId(m, 'two').failures, 1);
  rmSync(join(out, 'two', 'notes.txt'));
  const again = await batch([file, '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.err, /0 to compute, 1 already done, 1 failed/);
  const retried = await batch([file, '--out', out, '--retry-failed']);
  assert.equal(retried.code, 0, retried.err);
  m = manifestOf(out);
  assert.equal(byId(m, 'two').status, 'done');
  assert.equal(byId(m, 'two').error, undefined);
  assert.ok(existsSync(join(out, 'two', 'result.png')));
});

test('malformed batch files are errors naming the line and column', async () => {
  const cases: [string, string, RegExp][] = [
    ['quote.csv', 'structure,appearance,domain\n"a.png,b.png,bird\n', /quote\.csv:2:1: unterminated quoted field/],
    ['count.csv', 'structure,appearance,domain\na.png,b.png,bird,64\n', /count\.csv:2:18: the row has 4 fields but the header names 3 columns/],
    ['dup.csv', 'structure,appearance,structure\n', /dup\.csv:1:22: column 'structure' is named twice/],
    ['bad.jsonl', '{"structure": "a.png"}\n{"structure": \n', /bad\.jsonl:2:\d+: not valid JSON/],
    ['array.jsonl', '{"structure": "a.png"}\n  [1, 2]\n', /array\.jsonl:2:3: expected a JSON object .* but found an array/],
    ['empty.csv', 'structure,appearance,domain\n\n', /empty\.csv: the batch file has no rows/],
  ];
  for (const [name, text, message] of cases) {
    writeFileSync(join(root, name), text);
    assert.throws(() => readBatchFile(join(root, name)), message, name);
  }
  writeFileSync(join(root, 'cli.csv'), 'structure,appearance\n"x\n');
  const r = await batch([join(root, 'cli.csv'), '--out', join(root, 'cli-out')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /eye4eye batch: FileError \[[A-Z_]+\]: .*cli\.csv:2:1: unterminated quoted field/);
  assert.equal((await batch([])).code, 2);
});

test('bad rows fail with a message naming the row, the column and the value; the others parse', () => {
  const file = join(root, 'rows.csv');
  writeFileSync(
    file,
    [
      'id,structure,appearance,domain,steps,structure-box,structure-point,v-injection,colour',
      'ok,bird-blue.png,bird-red.png,bird,6,"1,2,30,40","5,5,1;9,9,0",yes,',
      'ok,bird-blue.png,bird-red.png,bird,6,,,,',
      '../up,bird-blue.png,bird-red.png,bird,6,,,,',
      'steps,bird-blue.png,bird-red.png,bird,six,,,,',
      'box,bird-blue.png,bird-red.png,bird,6,"1,2,3",,,',
      'gone,missing.png,bird-red.png,bird,6,,,,',
      'colour,bird-blue.png,bird-red.png,bird,6,,,,blue',
      'range,bird-blue.png,bird-red.png,bird,0,,,,',
      'inj,bird-blue.png,bird-red.png,bird,6,,,maybe,',
    ].join('\n'),
  );
  const { rows, problems } = parseRows(readBatchFile(file).rows, file, { batchOptions: { device: 'cpu' }, model: 'm' });
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0]!.options.structureBox, [1, 2, 30, 40]);
  assert.deepEqual(rows[0]!.options.structurePoints, [
    { x: 5, y: 5, label: 1 },
    { x: 9, y: 9, label: 0 },
  ]);
  assert.equal(rows[0]!.options.injection, 'vInjection');
  assert.equal(rows[0]!.options.numSteps, 6);
  const error = (id: string): string => problems.find((p) => p.id === id)?.error ?? `no problem for ${id}`;
  assert.match(problems[0]!.error, /row 2 \(line 3\): id 'ok' is used by row 1 too/);
  assert.match(error('row-3'), /row 3 \(line 4\): column 'id': "\.\.\/up" is not a safe folder name/);
  assert.match(error('steps'), /column 'steps': expected a number but received 'six'/);
  assert.match(error('box'), /column 'structure-box': expected x0,y0,x1,y1 \(four numbers\) but received '1,2,3'/);
  assert.match(error('gone'), /column 'structure': .*missing\.png: no such file/);
  assert.match(error('colour'), /unknown column 'colour'/);
  assert.match(error('range'), /column 'steps': .*numSteps/);
  assert.match(error('inj'), /column 'v-injection': expected true or false but received 'maybe'/);
  const dev = join(root, 'dev.jsonl');
  writeFileSync(dev, JSON.stringify({ structure: 'bird-blue.png', appearance: 'bird-red.png', domain: 'bird', device: 'cpu' }));
  const d = parseRows(readBatchFile(dev).rows, dev, { batchOptions: {}, model: 'm' });
  assert.match(d.problems[0]!.error, /column 'device': device is set for the whole batch/);
});

test('Ctrl-C (SIGINT) of the eye4eye batch process stops after the current row with a valid manifest (exit 130)', async () => {
  const file = join(root, 'sigint.csv');
  const rows = ['structure,appearance,domain,size,steps,seed'];
  for (let seed = 10; seed < 13; seed++) rows.push(`bird-blue.png,bird-red.png,bird,64,30,${seed}`);
  writeFileSync(file, rows.join('\n'));
  const out = join(root, 'sigint-out');
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'eye4eye.js'), 'batch', file, '--out', out, '--model', sd1TinyModelDir, '--cache-dir', cache], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (!sent && /row-1: inversion-app/.test(err)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, err);
  assert.match(err, /Ctrl-C: stopping after the current row/);
  assert.match(err, /interrupted; run the same command again to resume/);
  const m = manifestOf(out);
  assert.deepEqual(
    m.rows.map((r) => r.status),
    ['done', 'pending', 'pending'],
  );
  assert.ok(existsSync(join(out, 'row-1', 'run.json')));
  assert.ok(!existsSync(join(out, '.eye4eye-batch.lock')), 'the batch lock is released');
});

test('rows with SAM-HQ prompts get their masks from --sam-model, loaded once for the batch; a box outside the image fails its row, and so does a mask too small for the method', async () => {
  const file = join(root, 'sam.jsonl');
  const base = { appearance: 'bird-red.png', domain: 'bird', size: 128, steps: 4 };
  writeFileSync(
    file,
    [
      JSON.stringify({ id: 'box', structure: 'bird-blue.png', ...base, structureBox: [100, 100, 400, 400] }),
      JSON.stringify({ id: 'point', structure: 'bird-blue.png', ...base, 'appearance-point': '250,250,1;20,500,0' }),
      JSON.stringify({ id: 'outside', structure: 'bird-blue.png', ...base, 'structure-box': '100,100,900,400' }),
      // At 64 px the tiny random SAM-HQ's mask keeps one latent pixel: the method refuses it while computing.
      JSON.stringify({ id: 'too-small', structure: 'bird-blue.png', ...base, size: 64, structureBox: [100, 100, 400, 400] }),
    ].join('\n'),
  );
  const out = join(root, 'sam-out');
  const r = await batch([file, '--out', out, '--sam-model', samTinyModelDir]);
  assert.equal(r.code, 1, r.err);
  const m = manifestOf(out);
  assert.deepEqual(
    m.rows.map((x) => [x.id, x.status]),
    [
      ['box', 'done'],
      ['point', 'done'],
      ['outside', 'failed'],
      ['too-small', 'failed'],
    ],
    JSON.stringify(m.rows.map((x) => x.error)),
  );
  assert.match(byId(m, 'outside').error!, /row 3 \(line 3\): InvalidParameterError .*box \[100, 100, 900, 400\] is outside the 512x512 image/);
  assert.match(byId(m, 'too-small').error!, /row 4 \(line 4\): InvalidParameterError .*mask with at least 2 pixels equal to 1 for structMask/);
  assert.ok(byId(m, 'too-small').seconds! > 0, 'failed while computing, after the validation');
  assert.ok(existsSync(join(out, 'box', 'mask-structure.png')));
  assert.ok(existsSync(join(out, 'point', 'mask-appearance.png')));
});

test('a second Ctrl-C (abort) abandons the current row: it stays pending with no folder, and the rerun computes it', async () => {
  const file = join(root, 'abort.csv');
  writeFileSync(file, 'structure,appearance,domain,size,steps,seed\nbird-red.png,bird-blue.png,bird,64,6,21\nbird-blue.png,bird-red.png,bird,64,6,21\n');
  const out = join(root, 'abort-out');
  const abort = new AbortController();
  let err = '';
  const code = await runBatchCommand([file, '--out', out, '--model', sd1TinyModelDir, '--cache-dir', cache], {
    out: () => undefined,
    err: (s) => {
      err += s;
      if (/row-1: inversion-app: /.test(s)) abort.abort();
    },
    isTTY: false,
    abort: abort.signal,
  });
  assert.equal(code, 130, err);
  const m = manifestOf(out);
  assert.deepEqual(
    m.rows.map((r) => r.status),
    ['pending', 'pending'],
  );
  assert.ok(!existsSync(join(out, 'row-1')), 'the abandoned row left no folder');
  const rerun = await batch([file, '--out', out]);
  assert.equal(rerun.code, 0, rerun.err);
  assert.deepEqual(
    manifestOf(out).rows.map((r) => r.status),
    ['done', 'done'],
  );
});
