import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUNetConfig } from '../../../src/config/unet-config.js';
import { loadJsonConfig } from '../../../src/config/config-reader.js';
import { WeightMissingError, WeightShapeError, WeightUnusedError, ModelBuildError } from '../../../src/errors.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import { openTensorSource } from '../../../src/io/safetensors.js';
import { officialFreeU } from '../../../src/models/unet/freeu.js';
import { buildUNet } from '../../../src/models/unet/unet-2d-condition.js';
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';
import { randomFloats, runGraph, sd1TinyUNetConfig, sd1TinyUNetWeights, seededUniform } from './tiny-unet.js';
import { join } from 'node:path';

const golden = sd1Tiny();
const config = sd1TinyUNetConfig();

function goldenFeeds(prefix: 'unet' | 'unet_e4e'): Record<string, Tensor> {
  return {
    sample: golden.get(`${prefix}.sample`),
    timestep: golden.get(`${prefix}.timestep`),
    encoder_hidden_states: golden.get(`${prefix}.encoder_hidden_states`),
  };
}

function expectGolden(actual: Tensor, name: string): void {
  expectClose(actual, golden.get(name), { ...golden.tolerance(name), label: name });
}

test('plain UNet matches unet_plain.out', async () => {
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null }), goldenFeeds('unet'));
  expectGolden(out, 'unet_plain.out');
});

test('FreeU UNet matches unet_freeu.out', async () => {
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config) }), goldenFeeds('unet'));
  expectGolden(out, 'unet_freeu.out');
});

test('FreeU UNet without a hook matches unet_e4e.baseline (batch 6)', async () => {
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config) }), goldenFeeds('unet_e4e'));
  expectGolden(out, 'unet_e4e.baseline');
});

test('a non-square latent (16x24) runs and keeps its shape', async () => {
  const next = seededUniform(3);
  const feeds = {
    sample: float32([2, 4, 16, 24], randomFloats(next, 2 * 4 * 16 * 24)),
    timestep: golden.get('unet.timestep'),
    encoder_hidden_states: golden.get('unet.encoder_hidden_states'),
  };
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config) }), feeds);
  assert.deepEqual(out.dims, [2, 4, 16, 24]);
  assert.ok((out.data as Float32Array).every(Number.isFinite));
});

test('odd latent sizes (13x19, 9x7) run: the up path upsamples back to each skip size, as diffusers does', async () => {
  const graph = buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config) });
  for (const [h, w] of [
    [13, 19],
    [9, 7],
  ] as const) {
    const next = seededUniform(h * w);
    const out = await runGraph(graph, {
      sample: float32([2, 4, h, w], randomFloats(next, 2 * 4 * h * w)),
      timestep: golden.get('unet.timestep'),
      encoder_hidden_states: golden.get('unet.encoder_hidden_states'),
    });
    assert.deepEqual(out.dims, [2, 4, h, w]);
    assert.ok((out.data as Float32Array).every(Number.isFinite));
  }
});

test('the graph holds exactly the checkpoint tensors as named initializers', () => {
  const weights = sd1TinyUNetWeights();
  const { graph: g } = buildUNet(weights, config, { freeu: null });
  const named = g
    .listInitializers()
    .map((i) => i.name)
    .filter((n) => !n.startsWith('/constants/'))
    .sort();
  assert.deepEqual(named, weights.names().sort());
});

/** The sd1-tiny UNet tensors in memory, to be edited. */
function tinyTensors(): Record<string, Tensor> {
  const source = openTensorSource(join(sd1TinyModelDir, 'unet', 'diffusion_pytorch_model.safetensors'));
  const tensors: Record<string, Tensor> = {};
  for (const name of source.names()) tensors[name] = source.read(name);
  source.close();
  return tensors;
}

test('weights are checked in both directions, naming the tensor and shapes', () => {
  const build = (tensors: Record<string, Tensor>): unknown => buildUNet(WeightSet.fromTensors(tensors, 'tiny unet'), config, { freeu: null });
  const missing = tinyTensors();
  delete missing['down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight'];
  assert.throws(
    () => build(missing),
    (error: unknown) => {
      assert.ok(error instanceof WeightMissingError);
      assert.equal(
        error.message.split('\n')[0],
        'tiny unet: missing weight down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight: expected [16, 32]',
      );
      return true;
    },
  );
  const extra = { ...tinyTensors(), 'up_blocks.1.resnets.3.conv1.weight': float32([1], [0]) };
  assert.throws(
    () => build(extra),
    (error: unknown) => {
      assert.ok(error instanceof WeightUnusedError);
      assert.equal(error.message.split('\n')[0], 'tiny unet: 1 weight(s) not used by the model built from the config: up_blocks.1.resnets.3.conv1.weight');
      return true;
    },
  );
  const misshapen = { ...tinyTensors(), 'up_blocks.1.resnets.0.conv1.weight': float32([32, 48, 3, 3]) };
  assert.throws(
    () => build(misshapen),
    (error: unknown) => {
      assert.ok(error instanceof WeightShapeError);
      assert.equal(error.message, 'tiny unet: up_blocks.1.resnets.0.conv1.weight: expected [32, 64, 3, 3], got [32, 48, 3, 3]');
      return true;
    },
  );
});

test('config features the builder does not support are rejected, naming the field', () => {
  const json = loadJsonConfig(join(sd1TinyModelDir, 'unet', 'config.json')) as Record<string, unknown>;
  const onlyCross = parseUNetConfig({ ...json, only_cross_attention: true }, 'unet/config.json');
  assert.throws(
    () => buildUNet(sd1TinyUNetWeights(), onlyCross, { freeu: null }),
    (error: unknown) => {
      assert.ok(error instanceof ModelBuildError);
      assert.match(error.message, /^UNet config field 'only_cross_attention' = true \(block 0\) is not supported/);
      return true;
    },
  );
  const crossList = parseUNetConfig({ ...json, cross_attention_dim: [32, 32, 16, 16] }, 'unet/config.json');
  assert.throws(() => buildUNet(sd1TinyUNetWeights(), crossList, { freeu: null }), /field 'cross_attention_dim' = \[32, 32, 16, 16\] is not supported/);
});
