import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUNetConfig, parseUNetConfig } from '../../../../src/config/unet-config.js';
import { ModelBuildError } from '../../../../src/errors.js';
import { e4eFeeds, e4eSitesOf, injectionSlots } from '../../../../src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../../../../src/methods/eye-for-an-eye/index.js';
import {
  mapsFromOutputs,
  segmentationFeeds,
  segmentationOutput,
  segmentationSites,
  SEGMENTATION_MAP_NAMES,
  withSegmentationMaps,
} from '../../../../src/methods/shared/self-segmentation/index.js';
import { attentionMapProcessor } from '../../../../src/models/unet/explicit-attention.js';
import { StableDiffusionModel } from '../../../../src/runtime/stable-diffusion.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import { fixturesDir, sd1TinyModelDir } from '../../../helpers/paths.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-segrec-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

const tinyConfig = () => loadUNetConfig(join(sd1TinyModelDir, 'unet', 'config.json'));

test('the map sites are the last module of each kind at each level: the layers the cia-tiny reference recorded', () => {
  const io = JSON.parse(readFileSync(join(fixturesDir, 'golden', 'cia-tiny', 'io.json'), 'utf8')) as {
    segmentation: { map_sources: Record<string, { layer: string }> };
  };
  const sites = segmentationSites(tinyConfig());
  assert.deepEqual(Object.keys(sites).sort(), Object.keys(io.segmentation.map_sources).sort());
  for (const name of SEGMENTATION_MAP_NAMES) assert.equal(sites[name], io.segmentation.map_sources[name]!.layer, name);
});

test('a UNet without attention at a needed level is refused, naming the map and the level', () => {
  const raw = JSON.parse(readFileSync(join(sd1TinyModelDir, 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = parseUNetConfig(
    {
      ...raw,
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    },
    'variant/unet/config.json',
  );
  assert.throws(
    () => segmentationSites(config),
    (e: unknown) => e instanceof ModelBuildError && /cross-attention module at resolution level 2 for cross_attention_32/.test(e.message),
  );
});

test("recording rides along Eye-for-an-eye's processors: same noise, maps only when rows are fed, the method's sites unchanged", async () => {
  const model = StableDiffusionModel.open(sd1TinyModelDir, { cacheDir });
  try {
    const config = model.unetConfig;
    const plain = await model.unet(e4eUNetVariant(config));
    const unet = await model.unet(e4eUNetVariant(config, undefined, true));
    assert.deepEqual(e4eSitesOf(unet), e4eSitesOf(plain));
    assert.deepEqual(e4eSitesOf(plain), plain.info.processed);
    const latent = { height: 16, width: 16 };
    const sample: Tensor<'float32'> = { dtype: 'float32', dims: [3, 4, 16, 16], data: Float32Array.from({ length: 3 * 4 * 256 }, (_, i) => Math.sin(i * 0.7)) };
    const context: Tensor<'float32'> = { dtype: 'float32', dims: [3, 77, 32], data: Float32Array.from({ length: 3 * 77 * 32 }, (_, i) => Math.cos(i * 0.3)) };
    const feeds = e4eFeeds({ mode: 'match', slots: injectionSlots(false) }, e4eSitesOf(unet), 3);
    const base = await plain.call({ sample, timestep: 501, encoderHiddenStates: context, feeds });
    const quiet = await unet.call({ sample, timestep: 501, encoderHiddenStates: context, feeds });
    const recorded = await unet.call({ sample, timestep: 501, encoderHiddenStates: context, feeds: { ...feeds, ...segmentationFeeds([2, 1]) } });
    const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    assert.ok(maxDiff(quiet.noise.data, base.noise.data) < 1e-6, 'recording graph, no rows: same noise');
    assert.ok(maxDiff(recorded.noise.data, base.noise.data) < 1e-6, 'recording call: same noise');
    for (const name of SEGMENTATION_MAP_NAMES) assert.deepEqual(quiet.outputs[segmentationOutput(name)]!.dims, [0, 0, 0], name);
    const maps = mapsFromOutputs(recorded.outputs, { rows: { style: 1, struct: 0 }, latent });
    assert.equal(maps.style.self_attention_64.height, 16);
    assert.equal(maps.struct.cross_attention_32.height, 4);
    assert.equal(maps.struct.cross_attention_32.keys, 77);
    // Head-averaged softmax rows sum to 1.
    const row = maps.style.self_attention_64.data.subarray(0, 256).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(row - 1) < 1e-5, `row sum ${row}`);
    assert.throws(
      () => mapsFromOutputs(quiet.outputs, { rows: { style: 0, struct: 1 }, latent }),
      /was segmentation_rows fed\?\) for UNet output segmentation\.self_attention_64 but received \[0,0,0\]/,
    );
  } finally {
    await model.dispose();
  }
});

test('a base processor that computes the attention itself keeps its inputs and outputs; the recorded maps equal its own', async () => {
  const model = StableDiffusionModel.open(sd1TinyModelDir, { cacheDir });
  try {
    const config = model.unetConfig;
    const sites = segmentationSites(config);
    const selfSite = sites.self_attention_64;
    const base = {
      choose: (site: { modulePath: string }) =>
        site.modulePath === selfSite ? attentionMapProcessor({ record: 'record_maps', output: 'base.maps' }) : undefined,
    };
    const unet = await model.unet({ freeu: true, processors: { name: 'segtest', key: { test: 'base-attend' }, plan: withSegmentationMaps(base, config) } });
    assert.ok(unet.info.processed.includes(selfSite));
    const sample: Tensor<'float32'> = { dtype: 'float32', dims: [2, 4, 16, 16], data: Float32Array.from({ length: 2 * 4 * 256 }, (_, i) => Math.sin(i * 0.3)) };
    const context: Tensor<'float32'> = { dtype: 'float32', dims: [2, 77, 32], data: Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i * 0.1)) };
    const record = { record_maps: { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) } as Tensor };
    const r = await unet.call({ sample, timestep: 301, encoderHiddenStates: context, feeds: { ...record, ...segmentationFeeds([1]) } });
    const theirs = r.outputs['base.maps']!; // [2, 256, 256], head-averaged
    const ours = r.outputs[segmentationOutput('self_attention_64')]!; // [1, 256, 256] of row 1
    assert.deepEqual(ours.dims, [1, 256, 256]);
    const row1 = (theirs.data as Float32Array).subarray(256 * 256);
    const diff = (ours.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - row1[i]!)), 0);
    assert.ok(diff < 1e-7, `max diff ${diff}`);
  } finally {
    await model.dispose();
  }
});
