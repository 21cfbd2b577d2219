import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeEngine, openEngine, type ModelFacts } from '../../src/golden/engine.js';
import { DEFAULT_GOLDEN_TOLERANCE, type GoldenCase, type GoldenTensorMeta } from '../../src/golden/golden-case.js';
import {
  encoderStatesRole,
  latentRowsRole,
  mentionedTensors,
  resolveInput,
  timestepRole,
  unetSampleRole,
  vaeImageRole,
  vaeLatentRole,
} from '../../src/golden/inputs.js';
import { GoldenError } from '../../src/errors.js';
import { allocate, numel, type DType } from '../../src/tensor/tensor.js';
import { sd1Tiny } from '../helpers/golden.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

/** The sd1-tiny model's facts (checked against the engine below). */
const FACTS: ModelFacts = {
  unetInChannels: 4,
  unetOutChannels: 4,
  crossAttentionDims: [32],
  vaeInChannels: 3,
  latentChannels: 4,
  vaeDownscale: 8,
  vaeScalingFactor: 0.18215,
};

type Entry = Omit<GoldenTensorMeta, 'dtype'> & { dtype?: DType; fill?: number };

/** An in-memory golden case: io.json entries only; each tensor is filled with its `fill` value (default 0). */
function fakeCase(entries: Record<string, Entry>): GoldenCase {
  const tensors: Record<string, GoldenTensorMeta> = {};
  for (const [name, e] of Object.entries(entries)) {
    const { fill: _fill, ...meta } = e;
    tensors[name] = { ...meta, dtype: e.dtype ?? 'float32' };
  }
  return {
    dir: '/fake',
    modelDir: '/fake/model',
    meta: { tensors },
    tensors,
    runConfig: {},
    names: () => Object.keys(tensors).sort(),
    has: (n) => Object.hasOwn(tensors, n),
    get(n) {
      const m = tensors[n]!;
      const data = allocate(m.dtype as DType, numel(m.shape));
      const fill = entries[n]!.fill ?? 0;
      if (data instanceof BigInt64Array) data.fill(BigInt(fill));
      else (data as Float32Array).fill(fill);
      return { dtype: m.dtype as DType, dims: m.shape, data };
    },
    tolerance: () => ({ ...DEFAULT_GOLDEN_TOLERANCE }),
    close() {},
  };
}

const TOP: Record<string, Entry> = {
  'unet.sample': { role: 'input', shape: [2, 4, 16, 16], meaning: 'latents (batch 2)' },
  'unet.timestep': { role: 'input', shape: [1], dtype: 'int64', fill: 501 },
  'unet.encoder_hidden_states': { role: 'input', shape: [2, 77, 32], fill: 1 },
  'unet_e4e.timestep': { role: 'input', shape: [1], dtype: 'int64', fill: 601 },
  'unet_e4e.encoder_hidden_states': { role: 'input', shape: [6, 77, 32] },
  'unet_plain.out': { role: 'output', shape: [2, 4, 16, 16] },
};

function throwsMapping(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GoldenError, String(error));
    for (const p of patterns) assert.match(error.message, p);
    return true;
  });
}

test('the engine reports the sd1-tiny facts the resolver checks against', async () => {
  const engine = openEngine(sd1TinyModelDir);
  assert.deepEqual(engine.facts, FACTS);
  await closeEngine(engine);
});

test('mentionedTensors: whole tensor names of the case, longest dot-prefix, no suffix matches', () => {
  const golden = fakeCase({
    ...TOP,
    'nonsquare.unet.sample': { role: 'input', shape: [2, 4, 16, 8] },
    'inputs.image_app': { role: 'input', shape: [1, 3, 128, 128] },
  });
  assert.deepEqual(mentionedTensors(golden, 'vae.encode(inputs.image_app).latent_dist.mode() * 0.18215'), ['inputs.image_app']);
  assert.deepEqual(mentionedTensors(golden, 'crop of unet.sample[..., 4:12], fed with unet.timestep.'), ['unet.sample', 'unet.timestep']);
  assert.deepEqual(mentionedTensors(golden, 'UNet(nonsquare.unet.sample); pipe.unet.sample is not a tensor; unet.sample.mean() is'), [
    'nonsquare.unet.sample',
    'unet.sample',
  ]);
  assert.deepEqual(mentionedTensors(golden, JSON.stringify({ timestep: 'unet.timestep' })), ['unet.timestep']);
});

test("nonsquare: the sample named in the output, timestep and encoder states named in the sample's meaning", () => {
  const golden = fakeCase({
    ...TOP,
    'nonsquare.unet.sample': {
      role: 'input',
      shape: [2, 4, 16, 8],
      meaning: 'columns 4..11 of unet.sample; the UNet gets unet.timestep and unet.encoder_hidden_states',
    },
    'nonsquare.unet_plain.out': { role: 'output', shape: [2, 4, 16, 8], meaning: 'UNet2DConditionModel(nonsquare.unet.sample, t, ehs).sample' },
  });
  const opts = { anchor: 'nonsquare.unet_plain.out', namespace: 'nonsquare' };
  const sample = resolveInput(golden, unetSampleRole(FACTS, [2, 4, 16, 8], ['unet.sample']), opts);
  assert.equal(sample.name, 'nonsquare.unet.sample');
  assert.equal(sample.source, 'named in the meaning of nonsquare.unet_plain.out');
  const t = resolveInput(golden, timestepRole(['unet.timestep']), opts);
  assert.deepEqual([t.name, t.value, t.source], ['unet.timestep', 501, 'named in the meaning of nonsquare.unet.sample']);
  const ehs = resolveInput(golden, encoderStatesRole(FACTS, 2, ['unet.encoder_hidden_states']), opts);
  assert.equal(ehs.name, 'unet.encoder_hidden_states');
});

test('precedence: params binding and literals, then mentions, then the group analogue, then the top-level tensor', () => {
  const base = {
    ...TOP,
    'nonsquare.unet.sample': { role: 'input', shape: [2, 4, 16, 8], meaning: 'a crop of unet.sample' },
    'nonsquare.unet.timestep': { role: 'input', shape: [1], dtype: 'int64' as const, fill: 11 },
  };
  const out = (params?: Record<string, unknown>, meaning?: string): Record<string, Entry> => ({
    'nonsquare.unet_plain.out': {
      role: 'output',
      shape: [2, 4, 16, 8],
      ...(params === undefined ? {} : { params }),
      ...(meaning === undefined ? {} : { meaning }),
    },
  });
  const opts = { anchor: 'nonsquare.unet_plain.out', namespace: 'nonsquare' };
  const role = timestepRole(['unet.timestep']);
  // The analogue beats the top-level tensor (and the sample's "crop of unet.sample" does not pull in unet.sample).
  assert.equal(resolveInput(fakeCase({ ...base, ...out() }), role, opts).name, 'nonsquare.unet.timestep');
  const sample = resolveInput(fakeCase({ ...base, ...out() }), unetSampleRole(FACTS, [2, 4, 16, 8], ['unet.sample']), opts);
  assert.deepEqual([sample.name, sample.source], ['nonsquare.unet.sample', 'group analogue of unet.sample']);
  // A tensor the output's meaning names beats the analogue; a params binding beats both; a literal is taken as is.
  assert.equal(resolveInput(fakeCase({ ...base, ...out(undefined, 't = unet_e4e.timestep') }), role, opts).name, 'unet_e4e.timestep');
  assert.equal(resolveInput(fakeCase({ ...base, ...out({ timestep: 'unet.timestep' }, 't = unet_e4e.timestep') }), role, opts).name, 'unet.timestep');
  const literal = resolveInput(fakeCase({ ...base, ...out({ timestep: 651 }) }), role, opts);
  assert.deepEqual([literal.value, literal.source], [651, 'params.timestep of nonsquare.unet_plain.out = 651']);
  // No analogue: the top-level tensor.
  const { 'nonsquare.unet.timestep': _t, ...noAnalogue } = base;
  const top = resolveInput(fakeCase({ ...noAnalogue, ...out() }), role, opts);
  assert.deepEqual([top.name, top.value, top.source], ['unet.timestep', 501, 'top-level input']);
});

test('a candidate that does not fit its role is skipped; when none fits the error names the tensor, every candidate and why', () => {
  const golden = fakeCase({
    ...TOP,
    'nonsquare.unet.sample': { role: 'input', shape: [1, 4, 16, 8], meaning: 'batch 1; the UNet gets unet.encoder_hidden_states' },
    'nonsquare.unet_plain.out': { role: 'output', shape: [1, 4, 16, 8], meaning: 'UNet(nonsquare.unet.sample, unet.timestep, unet_e4e.encoder_hidden_states)' },
  });
  const opts = { anchor: 'nonsquare.unet_plain.out', namespace: 'nonsquare' };
  throwsMapping(
    () => resolveInput(golden, encoderStatesRole(FACTS, 1, ['unet.encoder_hidden_states']), opts),
    /^nonsquare\.unet_plain\.out: cannot map its encoder_hidden_states input \(wants float \[1, T, 32\]\); candidates looked at:\n/,
    /\n {2}unet_e4e\.encoder_hidden_states \(named in the meaning of nonsquare\.unet_plain\.out\): batch 6, the sample's batch is 1\n/,
    /\n {2}nonsquare\.unet\.encoder_hidden_states \(group analogue of unet\.encoder_hidden_states\): not in the case\n/,
    /\n {2}unet\.encoder_hidden_states \(named in the meaning of nonsquare\.unet\.sample\): batch 2, the sample's batch is 1$/,
  );
  // Wrong dtype / rank / channels / shape.
  const bad = fakeCase({
    'unet.sample': { role: 'input', shape: [2, 4, 16, 16] },
    'x.int': { role: 'input', shape: [2, 4, 16, 8], dtype: 'int64' },
    'x.three': { role: 'input', shape: [4, 16, 8] },
    'x.channels': { role: 'input', shape: [2, 8, 16, 8] },
    'x.out': { role: 'output', shape: [2, 4, 16, 8], meaning: 'UNet(x.int | x.three | x.channels)' },
  });
  throwsMapping(
    () => resolveInput(bad, unetSampleRole(FACTS, [2, 4, 16, 8], ['unet.sample']), { anchor: 'x.out' }),
    /x\.int \(named in the meaning of x\.out\): dtype int64, not a float/,
    /x\.three \(named in the meaning of x\.out\): shape \[4, 16, 8\] is not 4-D \(the sample this output needs is \[2, 4, 16, 8\]\)/,
    /x\.channels \(named in the meaning of x\.out\): 8 channels, the UNet takes 4/,
    /unet\.sample \(top-level input\): shape \[2, 4, 16, 16\], the sample this output needs is \[2, 4, 16, 8\]/,
  );
  throwsMapping(
    () => resolveInput(fakeCase({ 'y.out': { role: 'output', shape: [1] } }), timestepRole([]), { anchor: 'y.out' }),
    /^y\.out: cannot map its timestep input \(wants an integer tensor \[1\]\); candidates looked at:\n {2}none \(io\.json names no input for it\)$/,
  );
});

test('late tier: the only fitting group input, several only when equal; outputs named in texts are never inputs', () => {
  const latentRole = vaeLatentRole(FACTS, [1, 3, 128, 64], ['vae.decode.latent']);
  // Outputs named in texts are never inputs (here the FreeU output's meaning names the plain output, shaped like a sample).
  const sibling = fakeCase({
    'g.unet_plain.out': { role: 'output', shape: [2, 4, 16, 8] },
    'g.unet_freeu.out': { role: 'output', shape: [2, 4, 16, 8], meaning: 'as g.unet_plain.out, with FreeU' },
  });
  throwsMapping(
    () => resolveInput(sibling, unetSampleRole(FACTS, [2, 4, 16, 8], ['unet.sample']), { anchor: 'g.unet_freeu.out', namespace: 'g' }),
    /^g\.unet_freeu\.out: cannot map its UNet sample input \(wants float \[2, 4, 16, 8\]\); candidates looked at:\n {2}g\.unet\.sample \(group analogue of unet\.sample\): not in the case\n {2}unet\.sample \(top-level input\): not in the case$/,
  );
  const one = fakeCase({
    'g.a': { role: 'input', shape: [1, 4, 16, 8] },
    'g.b': { role: 'input', shape: [1, 4, 16, 16] },
    'g.out': { role: 'output', shape: [1, 3, 128, 64] },
  });
  const found = resolveInput(one, latentRole, { anchor: 'g.out' });
  assert.deepEqual([found.name, found.source], ['g.a', 'the only input of group g that fits']);
  const equal = fakeCase({
    'g.a': { role: 'input', shape: [1, 4, 16, 8], fill: 2 },
    'g.b': { role: 'input', shape: [1, 4, 16, 8], fill: 2 },
    'g.out': { role: 'output', shape: [1, 3, 128, 64] },
  });
  assert.equal(resolveInput(equal, latentRole, { anchor: 'g.out' }).source, 'inputs of group g that fit, all equal: g.a, g.b');
  const two = fakeCase({
    'g.a': { role: 'input', shape: [1, 4, 16, 8], fill: 1 },
    'g.b': { role: 'input', shape: [1, 4, 16, 8], fill: 2 },
    'g.out': { role: 'output', shape: [1, 3, 128, 64] },
  });
  throwsMapping(
    () => resolveInput(two, latentRole, { anchor: 'g.out' }),
    /vae\.decode\.latent \(top-level input\): not in the case/,
    /g\.a, g\.b \(inputs of group g\): several fit with different values, none is named by io\.json/,
  );
});

test('VAE image: a uint8 HWC image converts exactly as inputs.image_app documents; its size must match the latent', () => {
  const golden = sd1Tiny();
  const anchor = 'vae.encode.latent';
  const u8 = resolveInput(golden, vaeImageRole(FACTS, [1, 4, 16, 16], ['inputs.image_app_uint8']), { anchor: 'transfer.final_latents' });
  assert.equal(u8.name, 'inputs.image_app_uint8');
  const float = golden.get('inputs.image_app');
  assert.deepEqual(u8.value.dims, float.dims);
  assert.deepEqual(u8.value.data, float.data, 'float32(x)/127.5 - 1 in NCHW, bit for bit');
  const f = resolveInput(golden, vaeImageRole(FACTS, [1, 4, 16, 16], []), { anchor });
  assert.deepEqual([f.name, f.source], ['inputs.image_app', 'named in the meaning of vae.encode.latent']);
  throwsMapping(
    () => resolveInput(golden, vaeImageRole(FACTS, [1, 4, 16, 8], ['inputs.image_app_uint8']), { anchor }),
    /inputs\.image_app \(named in the meaning of vae\.encode\.latent\): shape \[1, 3, 128, 128\], the image this latent needs is \[1, 3, 128, 64\]/,
    /inputs\.image_app_uint8 \(top-level input\): shape \[128, 128, 3\], the image this latent needs \(uint8 HWC\) is \[128, 64, 3\]/,
  );
});

test('inversion rows: [N, 1, C, h, w] noise draws and [N, C, h, w] latents, N checked', () => {
  const golden = sd1Tiny();
  const noise = resolveInput(golden, latentRowsRole(FACTS, 'noise', 20, [4, 16, 16], ['inversion.app.noise']), { anchor: 'inversion.app.zs' });
  assert.equal(noise.value.length, 20);
  assert.equal(noise.value[0]!.length, 4 * 16 * 16);
  throwsMapping(
    () => resolveInput(golden, latentRowsRole(FACTS, 'wts', 15, undefined, ['inversion.app.wts']), { anchor: 'transfer.final_latents' }),
    /inversion\.app\.wts \(top-level input\): shape \[21, 4, 16, 16\], wts is \[15, 4, h, w\]/,
  );
});
