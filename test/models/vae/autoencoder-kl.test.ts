import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadVaeConfig, type VaeConfig } from '../../../src/config/vae-config.js';
import { WeightMissingError, WeightShapeError, WeightUnusedError } from '../../../src/errors.js';
import { openTensorSource, type TensorSource } from '../../../src/io/safetensors.js';
import { buildVaeDecoder, buildVaeEncoder, vaeDownscaleFactor } from '../../../src/models/vae/autoencoder-kl.js';
import type { GraphBuilder } from '../../../src/onnx/graph-builder.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import { Session } from '../../../src/runtime/session.js';
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { compareTensors, expectClose, formatCompare } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';

const vaeDir = join(sd1TinyModelDir, 'vae');
const weightsPath = join(vaeDir, 'diffusion_pytorch_model.safetensors');
const config: VaeConfig = loadVaeConfig(join(vaeDir, 'config.json'));
/** Batch-1 vs batch-2 results of one graph: the same kernels on the same data, so only reduction order may differ. */
const BATCH_TOLERANCE = { atol: 1e-6, rtol: 1e-5 };

const fileWeights = (): WeightSet => WeightSet.fromSource(openTensorSource(weightsPath));

/** Every tensor of the VAE file in memory, with `edit` applied (replace, delete, rename). */
function editedWeights(edit: (tensors: Record<string, Tensor>) => void): WeightSet {
  const source: TensorSource = openTensorSource(weightsPath);
  const tensors: Record<string, Tensor> = {};
  for (const name of source.names()) tensors[name] = source.read(name);
  source.close();
  edit(tensors);
  return WeightSet.fromTensors(tensors, 'vae/diffusion_pytorch_model.safetensors');
}

const session = async (g: GraphBuilder): Promise<Session> => Session.create(modelToBytes(g), { name: g.name });

function f32(t: Tensor): Float32Array {
  assert.equal(t.dtype, 'float32');
  return t.data as Float32Array;
}

/** Rows [top, top + height) and columns [left, left + width) of an NCHW tensor. */
function crop(t: Tensor, top: number, left: number, height: number, width: number): Tensor {
  const [b, c, h, w] = t.dims as [number, number, number, number];
  const src = f32(t);
  const out = new Float32Array(b * c * height * width);
  for (let plane = 0; plane < b * c; plane++) {
    for (let y = 0; y < height; y++) {
      const from = plane * h * w + (top + y) * w + left;
      out.set(src.subarray(from, from + width), (plane * height + y) * width);
    }
  }
  return float32([b, c, height, width], out);
}

function concatBatch(a: Tensor, b: Tensor): Tensor {
  const out = new Float32Array(f32(a).length + f32(b).length);
  out.set(f32(a));
  out.set(f32(b), f32(a).length);
  return float32([a.dims[0]! + b.dims[0]!, ...a.dims.slice(1)], out);
}

function batchItem(t: Tensor, index: number): Tensor {
  const size = f32(t).length / t.dims[0]!;
  return float32([1, ...t.dims.slice(1)], f32(t).slice(index * size, (index + 1) * size));
}

function expectGolden(t: { diagnostic: (message: string) => void }, actual: Tensor, name: string): void {
  const golden = sd1Tiny();
  const options = { ...golden.tolerance(name), label: name };
  t.diagnostic(formatCompare(compareTensors(actual, golden.get(name), options)));
  expectClose(actual, golden.get(name), options);
}

describe('AutoencoderKL (sd1-tiny): golden parity and dynamic shapes', () => {
  let encoder: Session;
  let decoder: Session;
  before(async () => {
    const weights = fileWeights();
    encoder = await session(buildVaeEncoder(weights, config));
    decoder = await session(buildVaeDecoder(weights, config));
  });
  after(async () => {
    await encoder.dispose();
    await decoder.dispose();
  });

  it('encodes inputs.image_app to vae.encode.latent', async (t) => {
    const { latent } = await encoder.run({ sample: sd1Tiny().get('inputs.image_app') });
    expectGolden(t, latent!, 'vae.encode.latent');
  });

  it('decodes vae.decode.latent to vae.decode.image', async (t) => {
    const { image } = await decoder.run({ latent: sd1Tiny().get('vae.decode.latent') });
    expectGolden(t, image!, 'vae.decode.image');
  });

  it('runs on a non-square 96x128 crop and gives the right output dims', async () => {
    const factor = vaeDownscaleFactor(config);
    assert.equal(factor, 8);
    const image = crop(sd1Tiny().get('inputs.image_app'), 16, 0, 96, 128);
    const { latent } = await encoder.run({ sample: image });
    assert.deepEqual(latent!.dims, [1, config.latentChannels, 96 / factor, 128 / factor]);
    const { image: decoded } = await decoder.run({ latent: latent! });
    assert.deepEqual(decoded!.dims, [1, config.outChannels, 96, 128]);
    assert.ok(f32(decoded!).every(Number.isFinite));
  });

  it('encodes a batch of 2 as two batches of 1', async () => {
    const golden = sd1Tiny();
    const app = golden.get('inputs.image_app');
    const struct = golden.get('inputs.image_struct');
    const { latent: both } = await encoder.run({ sample: concatBatch(app, struct) });
    assert.deepEqual(both!.dims, [2, config.latentChannels, 16, 16]);
    const { latent: first } = await encoder.run({ sample: app });
    const { latent: second } = await encoder.run({ sample: struct });
    expectClose(batchItem(both!, 0), first!, { ...BATCH_TOLERANCE, label: 'batch item 0' });
    expectClose(batchItem(both!, 1), second!, { ...BATCH_TOLERANCE, label: 'batch item 1' });
  });

  it('decodes a batch of 2 as two batches of 1', async () => {
    const latent = sd1Tiny().get('vae.decode.latent');
    const { image: both } = await decoder.run({ latent: concatBatch(latent, latent) });
    const { image: one } = await decoder.run({ latent });
    expectClose(batchItem(both!, 0), one!, { ...BATCH_TOLERANCE, label: 'batch item 0' });
    expectClose(batchItem(both!, 1), one!, { ...BATCH_TOLERANCE, label: 'batch item 1' });
  });
});

describe('AutoencoderKL: weights checked in both directions (no ORT)', () => {
  const weightNames = (g: GraphBuilder): string[] =>
    g
      .listInitializers()
      .map((i) => i.name)
      .filter((n) => !n.startsWith('/constants/'))
      .sort();

  it('the two graphs use every weight, each its own part, under the verbatim diffusers names', () => {
    const weights = fileWeights();
    const encoder = buildVaeEncoder(weights, config);
    const decoder = buildVaeDecoder(weights, config);
    assert.deepEqual(weights.unused(), []);
    const all = weights.names();
    assert.deepEqual(weightNames(encoder), all.filter((n) => /^(encoder|quant_conv)\./.test(n)).sort());
    assert.deepEqual(weightNames(decoder), all.filter((n) => /^(decoder|post_quant_conv)\./.test(n)).sort());
  });

  it('has one single-head MultiHeadAttention (mid block) per graph', () => {
    const weights = fileWeights();
    for (const g of [buildVaeEncoder(weights, config), buildVaeDecoder(weights, config)]) {
      assert.equal(g.opTypes().filter((op) => op === 'MultiHeadAttention').length, 1, g.name);
    }
  });

  it('names the tensor and both shapes when a weight has the wrong shape', () => {
    const name = 'encoder.down_blocks.1.resnets.0.conv1.weight';
    const weights = editedWeights((tensors) => {
      tensors[name] = float32([16, 16, 3, 3]);
    });
    assert.throws(
      () => buildVaeEncoder(weights, config),
      (error: unknown) => {
        assert.ok(error instanceof WeightShapeError);
        assert.equal(error.message, `vae/diffusion_pytorch_model.safetensors: ${name}: expected [16, 8, 3, 3], got [16, 16, 3, 3]`);
        return true;
      },
    );
  });

  it('names a missing weight and its expected shape', () => {
    const name = 'decoder.mid_block.attentions.0.to_q.weight';
    const weights = editedWeights((tensors) => {
      delete tensors[name];
    });
    assert.throws(
      () => buildVaeDecoder(weights, config),
      (error: unknown) => {
        assert.ok(error instanceof WeightMissingError);
        assert.equal(error.message.split('\n')[0], `vae/diffusion_pytorch_model.safetensors: missing weight ${name}: expected [32, 32]`);
        assert.equal(error.hint, 'the weights do not fit the config: check that config.json belongs to these weights');
        return true;
      },
    );
  });

  it('rejects a tensor the graph does not use', () => {
    const weights = editedWeights((tensors) => {
      tensors['encoder.mid_block.attentions.1.to_q.weight'] = float32([32, 32]);
    });
    assert.throws(() => buildVaeEncoder(weights, config), WeightUnusedError);
  });
});

describe('AutoencoderKL: checkpoints with the pre-0.14 attention names (query/key/value/proj_attn)', () => {
  const LEGACY: Readonly<Record<string, string>> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
  const legacyWeights = (): WeightSet =>
    editedWeights((tensors) => {
      for (const name of Object.keys(tensors)) {
        const match = /^(.*\.attentions\.0\.)(to_q|to_k|to_v|to_out\.0)(\.(weight|bias))$/.exec(name);
        if (match === null) continue;
        tensors[`${match[1]}${LEGACY[match[2]!]}${match[3]}`] = tensors[name]!;
        delete tensors[name];
      }
    });

  it('builds from the old names and keeps them verbatim', () => {
    const g = buildVaeDecoder(legacyWeights(), config);
    const names = g.listInitializers().map((i) => i.name);
    assert.ok(names.includes('decoder.mid_block.attentions.0.proj_attn.weight'));
    assert.ok(!names.some((n) => n.includes('.to_q.')));
  });

  it('decodes vae.decode.latent to vae.decode.image', async (t) => {
    const decoder = await session(buildVaeDecoder(legacyWeights(), config));
    const { image } = await decoder.run({ latent: sd1Tiny().get('vae.decode.latent') });
    await decoder.dispose();
    expectGolden(t, image!, 'vae.decode.image');
  });
});
