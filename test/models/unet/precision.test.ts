import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { officialFreeU } from '../../../src/models/unet/freeu.js';
import { buildUNet } from '../../../src/models/unet/unet-2d-condition.js';
import { e4eProcessorPlan } from '../../../src/methods/eye-for-an-eye/index.js';
import { decodeModel } from '../../../src/onnx/proto.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { buildTarget } from '../../../src/onnx/target.js';
import { StableDiffusionModel } from '../../../src/runtime/stable-diffusion.js';
import { compareTensors } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';
import { runGraph, sd1TinyUNetConfig, sd1TinyUNetWeights } from './tiny-unet.js';

const golden = sd1Tiny();
const config = sd1TinyUNetConfig();
const feeds = { sample: golden.get('unet.sample'), timestep: golden.get('unet.timestep'), encoder_hidden_states: golden.get('unet.encoder_hidden_states') };

test('an fp16 UNet runs in float16 with float32 islands, float32 in and out, and stays near the reference', async () => {
  const built = buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config), target: buildTarget('cpu', 'fp16') });
  const model = decodeModel(modelToBytes(built.graph));
  const FLOAT16 = 10;
  const casts = model.graph.node.filter((n) => n.opType === 'Cast');
  const to = (n: (typeof casts)[number]): number => Number(n.attribute.find((a) => a.name === 'to')!.i);
  assert.ok(casts.filter((n) => to(n) === FLOAT16).length > 100, 'weights and activations are cast to float16');
  for (const island of ['norm1/Cast_fp32', 'time_embedding/Cast_fp16', '/unet/Cast_sample_fp16', '/unet/Cast_out_fp32']) {
    assert.ok(
      casts.some((n) => n.name.includes(island)),
      `a Cast at ${island}`,
    );
  }
  assert.deepEqual(model.graph.output.find((o) => o.name === 'out_sample')!.type.tensorType.elemType, 1, 'out_sample stays float32');
  const fp16 = await runGraph(built, feeds);
  const expected = golden.get('unet_freeu.out');
  const loose = compareTensors(fp16, expected, { atol: 2e-2, rtol: 1e-2, label: 'fp16 vs reference' });
  assert.ok(loose.ok, `fp16 UNet far from the reference: max|diff| ${loose.maxAbs}`);
  const tight = compareTensors(fp16, expected, { atol: 1e-5, rtol: 0, label: 'fp16 differs' });
  assert.ok(!tight.ok && tight.maxAbs > 1e-4, `fp16 output equals the float32 reference to ${tight.maxAbs}: not run in float16?`);
});

test("fp16: Eye-for-an-eye's cosine matching runs in float32", () => {
  const built = buildUNet(sd1TinyUNetWeights(), config, {
    freeu: officialFreeU(config),
    processors: e4eProcessorPlan(config),
    target: buildTarget('cpu', 'fp16'),
  });
  const bytes = modelToBytes(built.graph);
  const model = decodeModel(bytes);
  const names: string[] = [];
  const walk = (nodes: NonNullable<NonNullable<typeof model.graph>['node']>): void => {
    for (const n of nodes) {
      names.push(n.name);
      for (const a of n.attribute ?? []) if (a.g?.node) walk(a.g.node);
    }
  };
  walk(model.graph.node);
  const site = 'up_blocks.3/attentions.0/transformer_blocks.0/attn1';
  assert.ok(
    names.some((n) => n.includes(site) && n.endsWith('Cast_out_fp32')),
    'out rows cast to float32 before matching',
  );
  assert.ok(
    names.some((n) => n.includes(site) && n.endsWith('Cast_style_fp32')),
    'style rows cast to float32 before matching',
  );
});

test('precision is part of the graph-cache key: fp32 and fp16 UNets are two entries', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-precision-'));
  try {
    for (const precision of ['fp32', 'fp16'] as const) {
      const model = StableDiffusionModel.open(sd1TinyModelDir, { cacheDir, precision });
      await model.unet({ freeu: true });
      await model.dispose();
    }
    assert.equal(readdirSync(join(cacheDir, 'graphs')).filter((d) => d.startsWith('unet_freeu-')).length, 2);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
