import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGoldenCase } from '../../src/golden/golden-case.js';
import { GoldenError } from '../../src/errors.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { numel, tensor } from '../../src/tensor/tensor.js';
import { sd1Tiny } from '../helpers/golden.js';
import { sd1TinyDir } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'e4e-golden-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function throwsGolden(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GoldenError, `expected GoldenError, got ${String(error)}`);
    assert.equal(error.code, 'E_GOLDEN');
    assert.equal(error.message, message);
    return true;
  });
}

test('sd1-tiny: every tensor io.json lists loads with its shape and dtype', () => {
  const golden = sd1Tiny();
  const listed = JSON.parse(readFileSync(join(sd1TinyDir, 'io.json'), 'utf8')) as { tensors: Record<string, { shape: number[]; dtype: string }> };
  assert.deepEqual(golden.names(), Object.keys(listed.tensors).sort());
  assert.equal(golden.names().length, 88);
  for (const name of golden.names()) {
    const t = golden.get(name);
    const meta = listed.tensors[name]!;
    assert.deepEqual(t.dims, meta.shape, name);
    assert.equal(t.dtype, meta.dtype, name);
    assert.equal(t.data.length, numel(meta.shape), name);
    assert.deepEqual(golden.tensors[name]?.shape, meta.shape);
  }
  assert.equal(golden.get('text.input_ids').dtype, 'int64');
  assert.equal(golden.modelDir, join(sd1TinyDir, 'model'));
  assert.equal(golden.runConfig['num_timesteps'], 20);
  assert.equal(golden.meta['case'], 'sd1-tiny');
  assert.equal(golden.tensors['inputs.image_app']?.role, 'input');
  assert.equal(golden.has('inputs.image_app'), true);
  assert.equal(golden.has('nope'), false);
  throwsGolden(() => golden.get('nope'), `${sd1TinyDir}: no golden tensor named 'nope'`);
  assert.equal(sd1Tiny(), golden); // cached
});

test('tolerance: longest matching prefix of recommended_tolerances, else the default', () => {
  const golden = sd1Tiny();
  assert.deepEqual(golden.tolerance('transfer.latents'), { rtol: 0.001, atol: 0.0008 });
  assert.deepEqual(golden.tolerance('transfer.image_uint8'), { rtol: 0, atol: 1 });
  assert.deepEqual(golden.tolerance('inversion.app.zs'), { rtol: 0.001, atol: 0.0007 });
  assert.deepEqual(golden.tolerance('unet_plain.out'), { rtol: 1e-3, atol: 1e-4 });
});

/** A small golden folder: io.json listing `listed`, io.safetensors holding `stored`. */
function miniCase(listed: Record<string, unknown>, tolerances?: unknown): string {
  const dir = mkdtempSync(join(tmp, 'case-'));
  mkdirSync(join(dir, 'model'));
  writeSafetensors(join(dir, 'io.safetensors'), {
    'a.x': tensor('float32', [2], Float32Array.from([1, 2])),
    'a.xy': tensor('float16', [1], Uint16Array.from([0x3c00])),
  });
  writeFileSync(join(dir, 'io.json'), JSON.stringify({ tensors: listed, recommended_tolerances: tolerances }));
  return dir;
}

test('prefix lookup picks the longest prefix; float16 tensors come back as float32', () => {
  const dir = miniCase({ 'a.x': { shape: [2], dtype: 'float32' }, 'a.xy': { shape: [1], dtype: 'float16' } }, { a: [0.1, 0.2], 'a.x': [0.3, 0.4] });
  const golden = loadGoldenCase(dir);
  assert.deepEqual(golden.tolerance('a.xy'), { rtol: 0.3, atol: 0.4 });
  assert.deepEqual(golden.tolerance('a.y'), { rtol: 0.1, atol: 0.2 });
  assert.deepEqual(golden.tolerance('b'), { rtol: 1e-3, atol: 1e-4 });
  const half = golden.get('a.xy');
  assert.equal(half.dtype, 'float32');
  assert.deepEqual([...half.data], [1]);
  assert.deepEqual(golden.runConfig, {});
  golden.close();
});

test('golden errors: missing folder, io.json, io.safetensors, listed tensors and disagreements', () => {
  const none = join(tmp, 'none');
  throwsGolden(() => loadGoldenCase(none), `${none}: golden case folder not found\n  hint: copy the case from shared/golden/ into test/fixtures/golden/`);
  const dir = mkdtempSync(join(tmp, 'partial-'));
  const hint = '\n  hint: a golden case holds io.json, io.safetensors and model/';
  throwsGolden(() => loadGoldenCase(dir), `${dir}: golden case has no io.json${hint}`);
  writeFileSync(join(dir, 'io.json'), '{"tensors": {}}');
  throwsGolden(() => loadGoldenCase(dir), `${dir}: golden case has no io.safetensors${hint}`);
  cpSync(join(sd1TinyDir, 'io.safetensors'), join(dir, 'io.safetensors'));
  writeFileSync(join(dir, 'io.json'), '[]');
  throwsGolden(() => loadGoldenCase(dir), `${dir}: io.json must be an object with a 'tensors' object`);

  const bad = miniCase({
    'a.x': { shape: [3], dtype: 'float32' },
    'a.xy': { shape: [1], dtype: 'float32' },
    'c.missing': { shape: [1], dtype: 'int64' },
  });
  throwsGolden(
    () => loadGoldenCase(bad),
    `${bad}: io.json and io.safetensors disagree:\n` +
      "  tensor 'a.x' has shape [2] in io.safetensors but [3] in io.json\n" +
      "  tensor 'a.xy' has dtype float16 in io.safetensors but float32 in io.json\n" +
      "  tensor 'c.missing' is listed in io.json but missing from io.safetensors",
  );
  const badMeta = miniCase({ 'a.x': { shape: 'x', dtype: 'float32' } });
  throwsGolden(() => loadGoldenCase(badMeta), `${badMeta}: io.json entry for tensor 'a.x' must have an integer 'shape' array and a 'dtype' string`);
  const badTol = miniCase({}, { a: [0.1] });
  throwsGolden(() => loadGoldenCase(badTol), `${badTol}: io.json recommended_tolerances['a'] must be [rtol, atol], got [0.1]`);
});
