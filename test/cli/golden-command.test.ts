import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { openTensorSource, writeSafetensors } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { sd1TinyDir } from '../helpers/paths.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-golden-cache-'));
process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    ['golden', ...args, '--cache-dir', cacheDir],
    (s) => {
      out += s;
    },
    (s) => {
      err += s;
    },
  );
  return { code, out, err };
}

/** A copy of the case whose io.json (and optionally io.safetensors) we can change; the model is linked. */
function caseCopy(edit: (meta: Record<string, unknown>) => void, extraTensors?: Record<string, Tensor>): string {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-case-'));
  symlinkSync(join(sd1TinyDir, 'model'), join(dir, 'model'));
  const meta = JSON.parse(readFileSync(join(sd1TinyDir, 'io.json'), 'utf8')) as Record<string, unknown>;
  edit(meta);
  writeFileSync(join(dir, 'io.json'), JSON.stringify(meta));
  if (extraTensors === undefined) {
    cpSync(join(sd1TinyDir, 'io.safetensors'), join(dir, 'io.safetensors'));
  } else {
    const source = openTensorSource(join(sd1TinyDir, 'io.safetensors'));
    const all: Record<string, Tensor> = {};
    for (const name of source.names()) all[name] = source.read(name);
    source.close();
    writeSafetensors(join(dir, 'io.safetensors'), { ...all, ...extraTensors });
  }
  return dir;
}

test('eye4eye golden passes every group of the sd1-tiny case and --save writes every computed tensor', async () => {
  const saved = join(cacheDir, 'ours.safetensors');
  const { code, out } = await run([sd1TinyDir, '--save', saved]);
  assert.equal(code, 0, out);
  for (const group of [
    'text',
    'scheduler',
    'unet_plain',
    'unet_freeu',
    'vae',
    'unet_e4e',
    'unet_e4e_match',
    'unet_e4e_structcopy',
    'unet_e4e_match_masked',
    'unet_e4e_vswap',
    'inversion',
    'transfer',
  ]) {
    assert.match(out, new RegExp(`^\\[PASS\\] ${group} `, 'm'));
  }
  assert.doesNotMatch(out, /FAIL/);
  assert.match(out, /natural argmax mode: /);
  assert.match(
    out,
    /^ {4}check natural argmax: transfer\.latents before the first flipped decision \(iterations 0\.\.\d+\): PASS .*\(atol 8\.000e-4, rtol 0\.001, /m,
  );
  assert.match(out, /tensors: 54 passed, 0 failed; checks: 1 passed, 0 failed; groups failing: none/);
  const file = openTensorSource(saved);
  for (const name of [
    'text.last_hidden_state',
    'unet_e4e_match.out',
    'transfer.latents',
    'inversion.app.zs',
    'unet_e4e_match.match_index.up_blocks.3.attentions.2.transformer_blocks.0.attn1',
  ]) {
    assert.ok(file.has(name), `${name} saved`);
  }
  assert.deepEqual(file.info('transfer.latents').dims, [14, 3, 4, 16, 16]);
  file.close();
});

test('--only selects groups by name or prefix; an unknown group is an error', async () => {
  const { code, out } = await run([sd1TinyDir, '--only', 'text,unet_e4e_structcopy']);
  assert.equal(code, 0, out);
  assert.match(out, /\[PASS\] text /);
  assert.match(out, /\[PASS\] unet_e4e_structcopy /);
  assert.doesNotMatch(out, /\] vae /);
  const bad = await run([sd1TinyDir, '--only', 'nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--only: no group 'nope' in this case \(groups: text, scheduler, /);
});

test('a wrong expectation fails with the tensor, max |diff| and exit code 1', async () => {
  const dir = caseCopy((meta) => {
    (meta['prompts'] as string[])[0] = 'A photo of a cat';
    const t = (meta['tensors'] as Record<string, { params?: Record<string, unknown> }>)['text.input_ids']!;
    if (t.params !== undefined) (t.params['prompts'] as string[])[0] = 'A photo of a cat';
  });
  try {
    const { code, out } = await run([dir, '--only', 'text']);
    assert.equal(code, 1);
    assert.match(out, /\[FAIL\] text /);
    assert.match(out, /text\.input_ids: FAIL 1\/231 elements not close; max\|diff\| \d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a group we have no implementation for fails, it is never skipped', async () => {
  const extra: Tensor = { dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) };
  const dir = caseCopy(
    (meta) => {
      (meta['tensors'] as Record<string, unknown>)['newgroup.out'] = { shape: [2], dtype: 'float32', role: 'output' };
    },
    { 'newgroup.out': extra },
  );
  try {
    const { code, out } = await run([dir, '--only', 'newgroup,scheduler']);
    assert.equal(code, 1);
    assert.match(out, /\[PASS\] scheduler /);
    assert.match(out, /\[FAIL\] newgroup \(.*\n {4}cannot run: no implementation for group 'newgroup' yet/);
    assert.match(out, /groups failing: newgroup/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing case folder is a clear error', async () => {
  const { code, err } = await run([join(cacheDir, 'no-such-case')]);
  assert.equal(code, 1);
  assert.match(err, /no-such-case/);
});

test('usage errors exit 2', async () => {
  let err = '';
  assert.equal(
    await main(
      ['golden'],
      () => {},
      (s) => {
        err += s;
      },
    ),
    2,
  );
  assert.match(err, /Usage: eye4eye golden <case-dir>/);
  assert.equal(
    await main(
      ['frobnicate'],
      () => {},
      (s) => {
        err += s;
      },
    ),
    2,
  );
  assert.match(err, /unknown command 'frobnicate'/);
});
