import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attn1ModulePaths, type Attn1Hook, type Attn1Site } from '../../../src/models/unet/hook.js';
import { officialFreeU } from '../../../src/models/unet/freeu.js';
import { buildUNet } from '../../../src/models/unet/unet-2d-condition.js';
import { mul, constFloat } from '../../../src/onnx/ops.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { Session } from '../../../src/runtime/session.js';
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { compareTensors, expectClose } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { randomFloats, runGraph, sd1TinyUNetConfig, sd1TinyUNetWeights, seededUniform } from './tiny-unet.js';

const golden = sd1Tiny();
const config = sd1TinyUNetConfig();
const feeds = {
  sample: golden.get('unet.sample'),
  timestep: golden.get('unet.timestep'),
  encoder_hidden_states: golden.get('unet.encoder_hidden_states'),
};

const EXPECTED_SITES = [
  ...[0, 1, 2].flatMap((i) => [0, 1].map((j) => `down_blocks.${i}.attentions.${j}.transformer_blocks.0.attn1`)),
  'mid_block.attentions.0.transformer_blocks.0.attn1',
  ...[1, 2, 3].flatMap((i) => [0, 1, 2].map((j) => `up_blocks.${i}.attentions.${j}.transformer_blocks.0.attn1`)),
];

test('attn1ModulePaths lists every attn1 of the config in execution order', () => {
  assert.deepEqual(attn1ModulePaths(config), EXPECTED_SITES);
});

test('the hook is called once per attn1 with its site; an identity hook changes nothing', async () => {
  const sites: Attn1Site[] = [];
  const identity: Attn1Hook = (_scope, site, hidden) => {
    sites.push(site);
    return hidden;
  };
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null, attn1Hook: identity }), feeds);
  assert.deepEqual(sites.map((s) => s.modulePath), EXPECTED_SITES);
  const up3 = sites.find((s) => s.modulePath === 'up_blocks.3.attentions.0.transformer_blocks.0.attn1')!;
  assert.deepEqual({ up: up3.upBlockIndex, channels: up3.channels, heads: up3.heads }, { up: 3, channels: 8, heads: 2 });
  assert.equal(sites.find((s) => s.modulePath.startsWith('mid_block'))!.upBlockIndex, null);
  expectClose(out, golden.get('unet_plain.out'), { ...golden.tolerance('unet_plain.out'), label: 'identity hook' });
});

test('a hook that zeroes the attn1 input of the up blocks changes the output', async () => {
  const zero: Attn1Hook = (scope, site, hidden) => (site.upBlockIndex === null ? hidden : mul(scope.sub('zero'), hidden, constFloat(scope.g, 0)));
  const out = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config), attn1Hook: zero }), feeds);
  const result = compareTensors(out, golden.get('unet_freeu.out'), { atol: 1e-4, rtol: 1e-3, label: 'zero hook' });
  assert.ok(!result.ok && result.maxAbs > 1e-2, `output barely changed: max|diff| ${result.maxAbs}`);
});

test('a hook may give separate Q/K and V inputs (Attn1Edit)', async () => {
  const same: Attn1Hook = (_scope, _site, hidden) => ({ qk: hidden, v: hidden });
  const plain = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null, attn1Hook: same }), feeds);
  expectClose(plain, golden.get('unet_plain.out'), { ...golden.tolerance('unet_plain.out'), label: 'Attn1Edit identity' });
  const zeroed = (hook: 'qk' | 'v'): Attn1Hook => (scope, site, hidden) => {
    if (site.upBlockIndex !== 3) return hidden;
    const zero = mul(scope.sub('zero'), hidden, constFloat(scope.g, 0));
    return hook === 'qk' ? { qk: zero, v: hidden } : { qk: hidden, v: zero };
  };
  const outQk = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null, attn1Hook: zeroed('qk') }), feeds);
  const outV = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null, attn1Hook: zeroed('v') }), feeds);
  for (const [label, a, b] of [['Q/K zeroed vs plain', outQk, plain], ['V zeroed vs plain', outV, plain], ['V zeroed vs Q/K zeroed', outV, outQk]] as const) {
    const result = compareTensors(a, b, { atol: 1e-4, rtol: 1e-3, label });
    assert.ok(result.maxAbs > 1e-3, `${label}: outputs barely differ (max|diff| ${result.maxAbs})`);
  }
});

test('the hook sees the token map height and width of its site (non-square latent)', async () => {
  const picked = ['down_blocks.0.attentions.0.transformer_blocks.0.attn1', 'mid_block.attentions.0.transformer_blocks.0.attn1',
    'up_blocks.2.attentions.1.transformer_blocks.0.attn1'];
  const expose: Attn1Hook = (scope, site, hidden) => {
    const i = picked.indexOf(site.modulePath);
    if (i >= 0) {
      scope.g.output(site.height, `height_${i}`, 'int64', [1]);
      scope.g.output(site.width, `width_${i}`, 'int64', [1]);
    }
    return hidden;
  };
  const g = buildUNet(sd1TinyUNetWeights(), config, { freeu: null, attn1Hook: expose });
  const session = await Session.create(modelToBytes(g));
  const next = seededUniform(5);
  const outputs: Record<string, Tensor> = await session.run({ ...feeds, sample: float32([2, 4, 16, 24], randomFloats(next, 2 * 4 * 16 * 24)) });
  await session.dispose();
  const sizes = picked.map((_, i) => [Number(outputs[`height_${i}`]!.data[0]), Number(outputs[`width_${i}`]!.data[0])]);
  assert.deepEqual(sizes, [[16, 24], [2, 3], [8, 12]]);
});
