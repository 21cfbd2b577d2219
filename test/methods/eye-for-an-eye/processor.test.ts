import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { e4eFeeds, injectionSlots, matchesOf, type E4EControls } from '../../../src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../../../src/methods/eye-for-an-eye/index.js';
import { StableDiffusionModel } from '../../../src/runtime/stable-diffusion.js';
import type { UNetRunner } from '../../../src/runtime/unet-runner.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-fi-'));
process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }));
const model = StableDiffusionModel.open(sd1TinyModelDir, { cacheDir });
const DEFAULT_SITES = [0, 1, 2]
  .map((j) => `up_blocks.2.attentions.${j}.transformer_blocks.0.attn1`)
  .concat([0, 1, 2].map((j) => `up_blocks.3.attentions.${j}.transformer_blocks.0.attn1`));

function rowsOf(t: Tensor<'float32'>, rows: readonly number[]): Tensor<'float32'> {
  const per = t.data.length / t.dims[0]!;
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, i) => data.set(t.data.subarray(r * per, (r + 1) * per), i * per));
  return { dtype: 'float32', dims: [rows.length, ...t.dims.slice(1)], data };
}

function rowDiff(a: Tensor<'float32'>, b: Tensor<'float32'>, row: number): number {
  const per = a.data.length / a.dims[0]!;
  let m = 0;
  for (let i = row * per; i < (row + 1) * per; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

interface Setup {
  unet: UNetRunner;
  call: (controls: E4EControls) => Promise<{ noise: Tensor<'float32'>; matches: Record<string, BigInt64Array> }>;
}

async function setup(): Promise<Setup> {
  const golden = sd1Tiny();
  // Batch of 3 without guidance: [out, style, struct], all with the cond prompt.
  const sample = rowsOf(golden.get('unet_e4e.sample') as Tensor<'float32'>, [3, 4, 5]);
  const context = rowsOf(golden.get('unet_e4e.encoder_hidden_states') as Tensor<'float32'>, [3, 4, 5]);
  const timestep = Number(golden.get('unet_e4e.timestep').data[0]);
  const unet = await model.unet(e4eUNetVariant(model.unetConfig));
  return {
    unet,
    call: async (controls) => {
      const r = await unet.call({ sample, timestep, encoderHiddenStates: context, feeds: e4eFeeds(controls, unet.info.processed, 3) });
      return { noise: r.noise, matches: matchesOf(r.outputs, unet.info.processed) };
    },
  };
}

test('the default sites are the attn1s of the two highest-resolution attention up blocks', async () => {
  const { unet } = await setup();
  assert.deepEqual(unet.info.processed, DEFAULT_SITES);
  assert.equal(unet.sites.length, 2 * 16, 'every attn1 and attn2 of the UNet is a site');
});

test('a call without feeds is the stock UNet (every input neutral)', async () => {
  const { unet, call } = await setup();
  const golden = sd1Tiny();
  const sample = golden.get('unet_e4e.sample') as Tensor<'float32'>;
  const r = await unet.call({
    sample,
    timestep: Number(golden.get('unet_e4e.timestep').data[0]),
    encoderHiddenStates: golden.get('unet_e4e.encoder_hidden_states') as Tensor<'float32'>,
  });
  const diff = Math.max(...Array.from({ length: 6 }, (_, i) => rowDiff(r.noise, golden.get('unet_e4e.baseline') as Tensor<'float32'>, i)));
  assert.ok(diff < 1e-4, `baseline max|diff| ${diff}`);
  const off = await call({ mode: 'off', slots: injectionSlots(false) });
  assert.ok(Object.values(off.matches).every((m) => m.every((v) => v === -2n)));
});

test('batch of 3 (no guidance): matching edits only the out row; structure copy too; off reports -2', async () => {
  const { call } = await setup();
  const slots = injectionSlots(false);
  const off = await call({ mode: 'off', slots });
  for (const mode of ['match', 'structCopy'] as const) {
    const on = await call({ mode, slots });
    assert.ok(rowDiff(on.noise, off.noise, 0) > 1e-3, `${mode} changes the out row`);
    assert.equal(rowDiff(on.noise, off.noise, 1), 0, `${mode} leaves the style row`);
    assert.equal(rowDiff(on.noise, off.noise, 2), 0, `${mode} leaves the struct row`);
  }
  const matched = await call({ mode: 'match', slots });
  const n = matched.matches[DEFAULT_SITES[5]!]!;
  assert.equal(n.length, 256);
  assert.ok(n.every((v) => v >= 0n && v < 256n));
});

test('forced matches: the natural argmax fed back reproduces the call; all -1 equals no injection', async () => {
  const { call } = await setup();
  const slots = injectionSlots(false);
  const natural = await call({ mode: 'match', slots });
  const replay = await call({ mode: 'match', slots, forced: natural.matches });
  assert.equal(rowDiff(replay.noise, natural.noise, 0), 0);
  assert.deepEqual(replay.matches, natural.matches);
  const keep: Record<string, BigInt64Array> = {};
  for (const s of DEFAULT_SITES) keep[s] = new BigInt64Array(natural.matches[s]!.length).fill(-1n);
  const off = await call({ mode: 'off', slots });
  const none = await call({ mode: 'match', slots, forced: keep });
  assert.equal(rowDiff(none.noise, off.noise, 0), 0);
});

test('an all-zero structure mask skips every out token (-1) and leaves the output as without injection', async () => {
  const { call } = await setup();
  const slots = injectionSlots(false);
  const zeros: Tensor<'float32'> = { dtype: 'float32', dims: [32, 32], data: new Float32Array(32 * 32) };
  const res = await call({ mode: 'match', slots, maskStruct: zeros });
  const off = await call({ mode: 'off', slots });
  assert.ok(Object.values(res.matches).every((m) => m.every((v) => v === -1n)));
  assert.equal(rowDiff(res.noise, off.noise, 0), 0);
});

test('slots outside the batch are rejected before running', () => {
  assert.throws(
    () => e4eFeeds({ mode: 'match', slots: injectionSlots(true) }, DEFAULT_SITES, 3),
    /e4e slots \{"matchOut":3,"matchStyle":4,"copyOut":0,"copySource":2,"vOut":0,"vStyle":1\} must be batch rows in \[0, 3\)/,
  );
});

test('feeds the graph does not have are rejected, naming them', async () => {
  const { unet } = await setup();
  const golden = sd1Tiny();
  await assert.rejects(
    unet.call({
      sample: golden.get('unet.sample') as Tensor<'float32'>,
      timestep: 1,
      encoderHiddenStates: golden.get('unet.encoder_hidden_states') as Tensor<'float32'>,
      feeds: { 'e4e_forced.up_blocks.1.attentions.0.transformer_blocks.0.attn1': { dtype: 'int64', dims: [0], data: new BigInt64Array(0) } },
    }),
    /feed\(s\) e4e_forced\.up_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn1 are no input of this graph \(processor inputs: e4e_mode, e4e_slots/,
  );
});

test('an unknown hook site is a build error naming the site and the sites there are', async () => {
  await assert.rejects(
    model.unet(e4eUNetVariant(model.unetConfig, ['up_blocks.9.attentions.0.transformer_blocks.0.attn1'])),
    /no attention module at up_blocks\.9\.attentions\.0\.transformer_blocks\.0\.attn1 \(attn1 modules of this UNet: down_blocks\.0/,
  );
});
