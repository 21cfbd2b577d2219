import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Branch } from '../../../src/methods/shared/branches.js';
import { NO_SWAP } from '../../../src/methods/cross-image-attention/controls.js';
import {
  adainAfterIteration,
  computesMasks,
  kvSource,
  recordsMaps,
  stepSeenByUnet,
  swapGuidanceApplies,
  swapStrengths,
  swapsAt,
} from '../../../src/methods/cross-image-attention/schedule.js';
import { swapGuidance } from '../../../src/methods/cross-image-attention/loop.js';
import { fixturesDir } from '../../helpers/paths.js';

interface Row {
  iteration: number;
  model_step_seen_by_unet: number;
  kv_source: string;
  swapped_layers: number;
  swap_guidance: boolean;
  swap_strength: number;
  segmentor_records: boolean;
  masks_computed: boolean;
  adain_after_step: boolean;
}

const meta = JSON.parse(readFileSync(join(fixturesDir, 'golden', 'cia-tiny', 'io.json'), 'utf8')) as {
  run_config: Record<string, [number, number] | number>;
  transfer_steps: Row[];
};
const range = (key: string): { start: number; end: number } => {
  const r = meta.run_config[key] as [number, number];
  return { start: r[0], end: r[1] };
};
const ranges = { range32: range('cross_attn_32_range'), range64: range('cross_attn_64_range') };
const adainRange = range('adain_range');
const scale = meta.run_config['swap_guidance_scale'] as number;

test('every rule of the schedule reproduces the reference run of cia-tiny (io.json transfer_steps)', () => {
  const rows = meta.transfer_steps;
  assert.equal(rows.length, 14);
  const strengths = swapStrengths(scale, rows.length);
  for (const row of rows) {
    const i = row.iteration;
    const step = stepSeenByUnet(i);
    assert.equal(step, row.model_step_seen_by_unet, `step of iteration ${i}`);
    // the tiny UNet has 3 swap layers at level 0 and 3 at level 1
    const kvs = [0, 0, 0, 1, 1, 1].map((level) => kvSource(level, step, ranges));
    const swapped = kvs.filter((k) => k !== NO_SWAP);
    assert.equal(swapped.length, row.swapped_layers, `layers swapped at iteration ${i}`);
    const expectedKv = row.kv_source === '-' ? undefined : row.kv_source === 'appearance' ? Branch.Style : Branch.Struct;
    for (const k of swapped) assert.equal(k, expectedKv, `K/V source at iteration ${i}`);
    assert.equal(swapGuidanceApplies(i, ranges, scale), row.swap_guidance, `guidance at iteration ${i}`);
    assert.equal(strengths[i], row.swap_strength, `strength at iteration ${i}`);
    assert.equal(recordsMaps(i, adainRange), row.segmentor_records, `recording at iteration ${i}`);
    assert.equal(computesMasks(i, adainRange), row.masks_computed, `masks at iteration ${i}`);
    assert.equal(adainAfterIteration(i, adainRange), row.adain_after_step, `AdaIN at iteration ${i}`);
  }
});

test('swap ranges by level: level 0 follows the 64 range, level 1 the 32 range, coarser levels never swap', () => {
  // at step 14 only the 64 range (2..18) is open
  assert.equal(swapsAt(0, 14, ranges), true);
  assert.equal(swapsAt(1, 14, ranges), false);
  assert.equal(swapsAt(2, 5, ranges), false);
  assert.equal(kvSource(2, 5, ranges), NO_SWAP);
  // refresh is hard-coded: step % 5 == 0 and step < 40, whatever the ranges
  const wide = { range32: { start: 0, end: 100 }, range64: { start: 0, end: 100 } };
  assert.equal(kvSource(0, 35, wide), Branch.Struct);
  assert.equal(kvSource(0, 40, wide), Branch.Style);
  assert.equal(kvSource(0, 41, wide), Branch.Style);
});

test('swap strengths are numpy linspace(s, max(s/2, 1), n); guidance off at scale 1; one iteration keeps the start', () => {
  assert.deepEqual(swapStrengths(1.5, 3), [1.5, 1.25, 1]);
  assert.deepEqual(swapStrengths(3.5, 1), [3.5]);
  assert.equal(swapGuidanceApplies(5, ranges, 1), false);
  // float32 arithmetic with the strength rounded to float32
  const out = swapGuidance(Float32Array.of(1, 2), Float32Array.of(2, 2), 3.0961538461538463);
  assert.equal(out[0], Math.fround(1 + Math.fround(Math.fround(3.0961538461538463) * 1)));
  assert.equal(out[1], 2);
});
