/**
 * A synthetic `nonsquare` group in a temporary copy of sd1-tiny, in the format the SD-2 cases use: non-square UNet
 * sample and VAE latent, the UNet's timestep / encoder states given only by naming `unet.timestep` /
 * `unet.encoder_hidden_states` in meanings and params (no nonsquare.*timestep tensor), and a uint8 HWC image for the
 * VAE encoder. The expected outputs are our own engine's on the intended inputs (this tests the mapping only).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeEngine, decodeLatent, encodeImage, openEngine, unetForward } from '../../src/golden/engine.js';
import type { CompareResult } from '../../src/golden/compare.js';
import { runGolden } from '../../src/golden/runner.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { caseVariant, sd1TinyTensors, type VariantOptions } from '../helpers/case-variant.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-nonsquare-cache-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

/** Columns [c0, c1) of the last axis. */
function cropLast<T extends Tensor<'float32'> | Tensor<'uint8'>>(t: T, c0: number, c1: number, channelsLast = false): T {
  const dims = [...t.dims];
  const axis = channelsLast ? dims.length - 2 : dims.length - 1;
  const inner = channelsLast ? dims[dims.length - 1]! : 1;
  const width = dims[axis]!;
  const outer = t.data.length / (width * inner);
  const data = new (t.data.constructor as Float32ArrayConstructor)(outer * (c1 - c0) * inner);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray((o * width + c0) * inner, (o * width + c1) * inner), o * (c1 - c0) * inner);
  dims[axis] = c1 - c0;
  return { dtype: t.dtype, dims, data } as unknown as T;
}

let variant: VariantOptions;

before(async () => {
  const all = sd1TinyTensors();
  const sample = cropLast(all['unet.sample'] as Tensor<'float32'>, 4, 12); // [2, 4, 16, 8]
  const image = cropLast(all['inputs.image_app_uint8'] as Tensor<'uint8'>, 32, 96, true); // [128, 64, 3] HWC
  const imageFloat = cropLast(all['inputs.image_app'] as Tensor<'float32'>, 32, 96); // the same image as fed to the VAE
  const latent = cropLast(all['vae.decode.latent'] as Tensor<'float32'>, 4, 12); // [1, 4, 16, 8]
  const timestep = Number((all['unet.timestep'] as Tensor<'int64'>).data[0]);
  const ehs = all['unet.encoder_hidden_states'] as Tensor<'float32'>;
  const engine = openEngine(sd1TinyModelDir, { cacheDir });
  const plain = await unetForward(engine, { freeu: false, sample, timestep, encoderHiddenStates: ehs });
  const freeu = await unetForward(engine, { freeu: true, sample, timestep, encoderHiddenStates: ehs });
  const encoded = await encodeImage(engine, imageFloat);
  const decoded = await decodeLatent(engine, latent);
  await closeEngine(engine);
  variant = {
    tensors: {
      'nonsquare.unet.sample': sample,
      'nonsquare.unet_plain.out': plain,
      'nonsquare.unet_freeu.out': freeu,
      'nonsquare.image_hwc': image,
      'nonsquare.vae.encode.latent': encoded,
      'nonsquare.vae.decode.latent': latent,
      'nonsquare.vae.decode.image': decoded,
    },
    entries: {
      'nonsquare.unet.sample': {
        role: 'input',
        meaning: 'non-square latents: columns 4..11 of unet.sample; the UNet gets unet.timestep and unet.encoder_hidden_states',
      },
      'nonsquare.unet_plain.out': { role: 'output', meaning: 'plain UNet2DConditionModel(nonsquare.unet.sample, t, ehs).sample' },
      'nonsquare.unet_freeu.out': {
        role: 'output',
        meaning: 'FreeU UNet on the inputs of nonsquare.unet_plain.out',
        params: { timestep: 'unet.timestep', encoder_hidden_states: 'unet.encoder_hidden_states' },
      },
      'nonsquare.image_hwc': {
        role: 'input',
        meaning: 'columns 32..95 of inputs.image_app_uint8, RGB uint8 HWC; fed to the VAE as float32(x)/127.5 - 1, NCHW (as inputs.image_app)',
      },
      'nonsquare.vae.encode.latent': {
        role: 'output',
        meaning: 'vae.encode(nonsquare.image_hwc as float32(x)/127.5 - 1).latent_dist.mode() * 0.18215',
        params: { scaling_factor: 0.18215 },
      },
      'nonsquare.vae.decode.latent': { role: 'input', meaning: 'columns 4..11 of vae.decode.latent' },
      'nonsquare.vae.decode.image': { role: 'output', meaning: 'vae.decode(latent / scaling_factor).sample, raw', params: { scaling_factor: 0.18215 } },
    },
  };
});

test('nonsquare: every output maps to its documented inputs and matches', async () => {
  const c = caseVariant(variant);
  try {
    const report = await runGolden(c.dir, { only: ['nonsquare'], cacheDir });
    const [group] = report.groups;
    assert.equal(group?.group, 'nonsquare');
    assert.equal(group.error, undefined);
    assert.deepEqual(
      group.comparisons.map((r) => [r.label, r.ok]),
      [
        ['nonsquare.unet_plain.out', true],
        ['nonsquare.unet_freeu.out', true],
        ['nonsquare.vae.encode.latent', true],
        ['nonsquare.vae.decode.image', true],
      ],
    );
    for (const r of group.comparisons) assert.ok(r.maxAbs <= 1e-6, `${r.label} ${r.maxAbs}`);
    assert.equal(report.ok, true);
    assert.deepEqual(group.notes, [
      'inputs of nonsquare.unet_plain.out: sample <- nonsquare.unet.sample (named in the meaning of nonsquare.unet_plain.out), ' +
        'timestep <- unet.timestep (named in the meaning of nonsquare.unet.sample), encoder_hidden_states <- unet.encoder_hidden_states (named in the meaning of nonsquare.unet.sample)',
      'inputs of nonsquare.unet_freeu.out: sample <- nonsquare.unet.sample (group analogue of unet.sample), ' +
        'timestep <- unet.timestep (params.timestep of nonsquare.unet_freeu.out), encoder_hidden_states <- unet.encoder_hidden_states (params.encoder_hidden_states of nonsquare.unet_freeu.out)',
      'inputs of nonsquare.vae.encode.latent: image <- nonsquare.image_hwc (named in the meaning of nonsquare.vae.encode.latent)',
      'inputs of nonsquare.vae.decode.image: latent <- nonsquare.vae.decode.latent (group analogue of vae.decode.latent)',
    ]);
    assert.deepEqual(report.computed['nonsquare.vae.encode.latent']?.dims, [1, 4, 16, 8]);
  } finally {
    c.cleanup();
  }
});

test('nonsquare: a missing input fails its outputs with the tensor, the candidates and why each was rejected; the others still run', async () => {
  const c = caseVariant({ ...variant, remove: ['nonsquare.unet.sample'] });
  try {
    const report = await runGolden(c.dir, { only: ['nonsquare'], cacheDir });
    const group = report.groups[0]!;
    assert.equal(report.ok, false);
    assert.equal(group.ok, false);
    assert.equal(group.error, undefined);
    const line = (name: string): CompareResult => group.comparisons.find((r) => r.label === name)!;
    assert.equal(line('nonsquare.unet_plain.out').ok, false);
    assert.equal(
      line('nonsquare.unet_plain.out').shapeError,
      'not computed: cannot map its UNet sample input (wants float [2, 4, 16, 8]); candidates looked at:\n' +
        '  nonsquare.unet.sample (group analogue of unet.sample): not in the case\n' +
        '  inputs.image_app_uint8 (named in the meaning of nonsquare.image_hwc): dtype uint8, not a float\n' +
        '  inputs.image_app (named in the meaning of nonsquare.image_hwc): 3 channels, the UNet takes 4\n' +
        '  vae.decode.latent (named in the meaning of nonsquare.vae.decode.latent): shape [1, 4, 16, 16], the sample this output needs is [2, 4, 16, 8]\n' +
        '  unet.sample (top-level input): shape [2, 4, 16, 16], the sample this output needs is [2, 4, 16, 8]',
    );
    assert.match(line('nonsquare.unet_freeu.out').shapeError ?? '', /^not computed: cannot map its UNet sample input/);
    assert.equal(line('nonsquare.vae.encode.latent').ok, true);
    assert.equal(line('nonsquare.vae.decode.image').ok, true);
    assert.deepEqual(Object.keys(report.computed).sort(), ['nonsquare.vae.decode.image', 'nonsquare.vae.encode.latent']);
  } finally {
    c.cleanup();
  }
});

test('nonsquare: a uint8 image of the wrong size is rejected with its shape', async () => {
  const image = variant.tensors!['nonsquare.image_hwc'] as Tensor<'uint8'>;
  const c = caseVariant({ ...variant, tensors: { ...variant.tensors, 'nonsquare.image_hwc': cropLast(image, 0, 56, true) } });
  try {
    const report = await runGolden(c.dir, { only: ['nonsquare'], cacheDir });
    const group = report.groups[0]!;
    assert.deepEqual(
      group.comparisons.map((r) => [r.label, r.ok]),
      [
        ['nonsquare.unet_plain.out', true],
        ['nonsquare.unet_freeu.out', true],
        ['nonsquare.vae.encode.latent', false],
        ['nonsquare.vae.decode.image', true],
      ],
    );
    const error = group.comparisons[2]!.shapeError ?? '';
    assert.match(error, /^not computed: cannot map its VAE image input \(wants float \[1, 3, 128, 64\] or uint8 HWC \[128, 64, 3\]\)/);
    assert.match(
      error,
      /\n {2}nonsquare\.image_hwc \(named in the meaning of nonsquare\.vae\.encode\.latent\): shape \[128, 56, 3\], the image this latent needs \(uint8 HWC\) is \[128, 64, 3\]/,
    );
  } finally {
    c.cleanup();
  }
});
