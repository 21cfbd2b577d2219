import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultE4ESites, StableDiffusionModel } from '../../../src/runtime/stable-diffusion.js';
import type { E4EControls, UNetRunner } from '../../../src/runtime/unet-runner.js';
import { OFFICIAL_CFG_SLOTS, SINGLE_BATCH_SLOTS, slotsInput } from '../../../src/transfer/slots.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-fi-'));
process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }));
const model = StableDiffusionModel.open(sd1TinyModelDir, { cacheDir });
const sites = defaultE4ESites(model.unetConfig);

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

async function setup(): Promise<{ unet: UNetRunner; sample: Tensor<'float32'>; context: Tensor<'float32'>; t: number }> {
  const golden = sd1Tiny();
  // Batch of 3 without guidance: [out, style, struct], all with the cond prompt.
  const sample = rowsOf(golden.get('unet_e4e.sample') as Tensor<'float32'>, [3, 4, 5]);
  const context = rowsOf(golden.get('unet_e4e.encoder_hidden_states') as Tensor<'float32'>, [3, 4, 5]);
  const t = Number(golden.get('unet_e4e.timestep').data[0]);
  return { unet: await model.unet({ freeu: true, e4eSites: sites }), sample, context, t };
}

test('the default hook sites are the attn1s of the two highest-resolution attention up blocks', () => {
  assert.deepEqual(sites, [0, 1, 2].map((j) => `up_blocks.2.attentions.${j}.transformer_blocks.0.attn1`)
    .concat([0, 1, 2].map((j) => `up_blocks.3.attentions.${j}.transformer_blocks.0.attn1`)));
});

test('batch of 3 (no guidance): matching edits only the out row; structure copy too; off reports -2', async () => {
  const { unet, sample, context, t } = await setup();
  const call = (e4e: E4EControls) => unet.call({ sample, timestep: t, encoderHiddenStates: context, e4e });
  const slots = slotsInput(SINGLE_BATCH_SLOTS);
  const off = await call({ mode: 'off', slots });
  assert.ok(Object.values(off.matches).every((m) => m.every((v) => v === -2n)));
  for (const mode of ['match', 'structCopy'] as const) {
    const on = await call({ mode, slots });
    assert.ok(rowDiff(on.noise, off.noise, 0) > 1e-3, `${mode} changes the out row`);
    assert.equal(rowDiff(on.noise, off.noise, 1), 0, `${mode} leaves the style row`);
    assert.equal(rowDiff(on.noise, off.noise, 2), 0, `${mode} leaves the struct row`);
  }
  const matched = await call({ mode: 'match', slots });
  const n = matched.matches[sites[5]!]!;
  assert.equal(n.length, 256);
  assert.ok(n.every((v) => v >= 0n && v < 256n));
});

test('forced matches: the natural argmax fed back reproduces the call; all -1 equals no injection', async () => {
  const { unet, sample, context, t } = await setup();
  const slots = slotsInput(SINGLE_BATCH_SLOTS);
  const call = (e4e: E4EControls) => unet.call({ sample, timestep: t, encoderHiddenStates: context, e4e });
  const natural = await call({ mode: 'match', slots });
  const replay = await call({ mode: 'match', slots, forced: natural.matches });
  assert.equal(rowDiff(replay.noise, natural.noise, 0), 0);
  assert.deepEqual(replay.matches, natural.matches);
  const keep: Record<string, BigInt64Array> = {};
  for (const s of sites) keep[s] = new BigInt64Array(natural.matches[s]!.length).fill(-1n);
  const off = await call({ mode: 'off', slots });
  const none = await call({ mode: 'match', slots, forced: keep });
  assert.equal(rowDiff(none.noise, off.noise, 0), 0);
});

test('an all-zero structure mask skips every out token (-1) and leaves the output as without injection', async () => {
  const { unet, sample, context, t } = await setup();
  const slots = slotsInput(SINGLE_BATCH_SLOTS);
  const zeros: Tensor<'float32'> = { dtype: 'float32', dims: [32, 32], data: new Float32Array(32 * 32) };
  const res = await unet.call({ sample, timestep: t, encoderHiddenStates: context, e4e: { mode: 'match', slots, maskStruct: zeros } });
  const off = await unet.call({ sample, timestep: t, encoderHiddenStates: context, e4e: { mode: 'off', slots } });
  assert.ok(Object.values(res.matches).every((m) => m.every((v) => v === -1n)));
  assert.equal(rowDiff(res.noise, off.noise, 0), 0);
});

test('slots outside the batch are rejected before running', async () => {
  const { unet, sample, context, t } = await setup();
  await assert.rejects(unet.call({ sample, timestep: t, encoderHiddenStates: context, e4e: { mode: 'match', slots: slotsInput(OFFICIAL_CFG_SLOTS) } }),
    /e4e slots \[3, 4, 0, 2, 0, 1\] must be 6 batch rows in \[0, 3\)/);
});

test('an unknown hook site is a build error naming the site', async () => {
  await assert.rejects(model.unet({ freeu: true, e4eSites: ['up_blocks.9.attentions.0.transformer_blocks.0.attn1'] }),
    /feature injection: no attn1 at up_blocks\.9\.attentions\.0\.transformer_blocks\.0\.attn1/);
});
