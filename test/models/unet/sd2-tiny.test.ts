/**
 * An SD-2-shaped tiny UNet (linear projections, heads per block, 2 transformer layers in one block, non-square
 * latent) with seeded random weights. The expected tensor names and shapes are written out in sd2-tiny.ts,
 * independently of the builder, following diffusers' module tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUNetConfig } from '../../../src/config/unet-config.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import { officialFreeU } from '../../../src/models/unet/freeu.js';
import { buildUNet } from '../../../src/models/unet/unet-2d-condition.js';
import { float32, tensor, type Tensor } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/expect-close.js';
import { randomWeights, SD2_TINY, unetWeightShapes } from './sd2-tiny.js';
import { randomFloats, runGraph, seededUniform } from './tiny-unet.js';

const config = parseUNetConfig(SD2_TINY, 'sd2-tiny/unet/config.json');
const shapes = unetWeightShapes(SD2_TINY);
const tensors = randomWeights(shapes, 2024);
const next = seededUniform(99);
const feeds = {
  sample: float32([3, 4, 8, 12], randomFloats(next, 3 * 4 * 8 * 12)),
  timestep: tensor('int64', [1], BigInt64Array.from([321n])),
  encoder_hidden_states: float32([3, 5, 12], randomFloats(next, 3 * 5 * 12)),
};

test('an SD-2-shaped UNet (linear projections, heads per block) builds from diffusers-named weights and runs', async () => {
  const built = buildUNet(WeightSet.fromTensors(tensors, 'sd2-tiny unet'), config, { freeu: officialFreeU(config) });
  const out = await runGraph(built, feeds);
  assert.deepEqual(out.dims, [3, 3, 8, 12]);
  assert.ok((out.data as Float32Array).every(Number.isFinite));
  assert.equal(built.sites.filter((s) => s.kind === 'self').length, 1 + 2 + 1 + 2 * 2 + 2 * 1);
});

test('linear projections equal 1x1-conv projections with the same weights', async () => {
  const asConv: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    asConv[name] = /\.proj_(in|out)\.weight$/.test(name) ? float32([...t.dims, 1, 1], t.data as Float32Array) : t;
  }
  const convConfig = parseUNetConfig({ ...SD2_TINY, use_linear_projection: false }, 'sd2-tiny-conv/unet/config.json');
  const linearOut = await runGraph(buildUNet(WeightSet.fromTensors(tensors, 'linear'), config, { freeu: null }), feeds);
  const convOut = await runGraph(buildUNet(WeightSet.fromTensors(asConv, 'conv'), convConfig, { freeu: null }), feeds);
  expectClose(linearOut, convOut, { atol: 1e-5, rtol: 1e-4, label: 'linear vs conv projection' });
});
