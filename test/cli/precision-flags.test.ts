/**
 * The flags of issue 9 through the command line: `golden --no-checks`, `golden --precision`, `transfer --precision`,
 * and the library's `keepSessions`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { loadPipeline } from '../../src/pipeline/pipeline.js';
import { repoRoot, sd1TinyDir, sd1TinyModelDir } from '../helpers/paths.js';

const root = mkdtempSync(join(tmpdir(), 'e4e-precision-flags-'));
const cacheDir = join(root, 'cache');
after(() => rmSync(root, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    args,
    (s) => {
      out += s;
    },
    (s) => {
      err += s;
    },
  );
  return { code, out, err };
}

function maxDiff(out: string, tensor: string): number {
  const m = new RegExp(`${tensor.replace('.', '\\.')}: (?:PASS|FAIL).*?max\\|diff\\| (\\S+)`).exec(out);
  assert.ok(m !== null, `no line for ${tensor} in:\n${out}`);
  return Number(m[1]);
}

test('golden --no-checks skips the natural-argmax rerun and says so; the tensors are still compared', async () => {
  const { code, out } = await cli(['golden', sd1TinyDir, '--only', 'transfer', '--no-checks', '--cache-dir', cacheDir]);
  assert.equal(code, 0, out);
  assert.match(out, /^\[PASS\] transfer /m);
  assert.match(out, /note: natural argmax check skipped \(--no-checks\)/);
  assert.doesNotMatch(out, /check natural argmax/);
  assert.match(out, /checks: 0 passed, 0 failed; groups failing: none/);
});

test('golden --precision fp16 builds the UNet in float16: its error against the float32 golden grows; a bad value is refused', async () => {
  const fp32 = await cli(['golden', sd1TinyDir, '--only', 'unet_plain', '--cache-dir', cacheDir]);
  const fp16 = await cli(['golden', sd1TinyDir, '--only', 'unet_plain', '--precision', 'fp16', '--cache-dir', cacheDir]);
  assert.equal(fp32.code, 0, fp32.out);
  const d32 = maxDiff(fp32.out, 'unet_plain.out');
  const d16 = maxDiff(fp16.out, 'unet_plain.out');
  assert.ok(d32 < 1e-4, `fp32 ${d32}`);
  assert.ok(d16 > 10 * d32 && d16 < 0.5, `fp16 ${d16} vs fp32 ${d32}`);
  const bad = await cli(['golden', sd1TinyDir, '--precision', 'fp64']);
  assert.equal(bad.code, 2);
  assert.equal(bad.err, "eye4eye golden: Expected one of fp32, fp16 for --precision but received 'fp64' of type string\n  (see eye4eye golden --help)\n");
  const device = await cli(['golden', sd1TinyDir, '--device', 'tpu']);
  assert.equal(device.code, 2);
  assert.match(device.err, /^eye4eye golden: Expected one of cpu, .* for --device but received 'tpu'/);
  const flag = await cli(['golden', sd1TinyDir, '--frobnicate']);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /^eye4eye golden: Unknown option '--frobnicate'/);
});

test('transfer --precision fp16 runs on the tiny model and run.json records it', async () => {
  const out = join(root, 'out-fp16');
  const examples = join(repoRoot, 'examples');
  const { code, err } = await cli([
    'transfer',
    '--structure',
    join(examples, 'bird-blue.png'),
    '--appearance',
    join(examples, 'bird-red.png'),
    '--domain',
    'bird',
    '--model',
    sd1TinyModelDir,
    '--size',
    '64',
    '--steps',
    '4',
    '--skip',
    '1',
    '--feat-range',
    '1,3',
    '--adain-range',
    '1,4',
    '--precision',
    'fp16',
    '--cache-dir',
    cacheDir,
    '--out',
    out,
  ]);
  assert.equal(code, 0, err);
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { options: { precision: string } };
  assert.equal(run.options.precision, 'fp16');
});

test('keepSessions: true keeps every session open after a transfer (false releases them all, the UNet before the decode)', async () => {
  const examples = join(repoRoot, 'examples');
  const inputs = { structure: join(examples, 'bird-blue.png'), appearance: join(examples, 'bird-red.png') };
  const options = { domain: 'bird', size: 64, numSteps: 4, skip: 1, featRange: [1, 3] as const, adainRange: [1, 4] as const };
  const kept = await loadPipeline(sd1TinyModelDir, { cacheDir, keepSessions: true });
  try {
    await kept.transfer(inputs, options);
    assert.deepEqual([...kept.model.openSessions].sort(), ['text_encoder', 'unet_freeu_e4e', 'vae_decoder', 'vae_encoder']);
  } finally {
    await kept.dispose();
  }
  const released = await loadPipeline(sd1TinyModelDir, { cacheDir });
  try {
    await released.transfer(inputs, options);
    assert.deepEqual(released.model.openSessions, []);
  } finally {
    await released.dispose();
  }
});
