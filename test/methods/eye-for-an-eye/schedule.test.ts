import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import {
  adainAfterIteration,
  attentionMode,
  inAdainRange,
  inFeatureRange,
  injectionMode,
  isStructureCopyStep,
  stepSeenByUnet,
  type StepRange,
} from '../../../src/methods/eye-for-an-eye/schedule.js';
import { readGoldenInts, readGoldenIoJson } from '../../helpers/read-golden-tensor.js';

interface TransferStep {
  iteration: number;
  timestep: number;
  model_step_seen_by_unet: number;
  struct_copy: boolean;
  matching: boolean;
  adain_after_step: boolean;
}

describe('schedule rules reproduce io.json transfer_steps of sd1-tiny (20 steps, skip 6)', () => {
  const io = readGoldenIoJson() as { run_config: { feat_range: [number, number]; adain_range: [number, number] }; transfer_steps: TransferStep[] };
  const featRange: StepRange = { start: io.run_config.feat_range[0], end: io.run_config.feat_range[1] };
  const adainRange: StepRange = { start: io.run_config.adain_range[0], end: io.run_config.adain_range[1] };

  it('has the 14 iterations of the golden, with transfer.model_step as the steps seen', () => {
    assert.equal(io.transfer_steps.length, 14);
    assert.deepEqual(
      io.transfer_steps.map((s) => s.model_step_seen_by_unet),
      readGoldenInts('transfer.model_step'),
    );
  });

  for (const s of io.transfer_steps) {
    it(`iteration ${s.iteration} (t=${s.timestep})`, () => {
      const step = stepSeenByUnet(s.iteration);
      assert.equal(step, s.model_step_seen_by_unet, 'step seen by the UNet');
      const mode = attentionMode(step, featRange);
      assert.equal(mode === 'structCopy', s.struct_copy, 'struct copy');
      assert.equal(mode === 'match', s.matching, 'matching');
      assert.equal(adainAfterIteration(s.iteration, adainRange), s.adain_after_step, 'AdaIN after the step');
    });
  }
});

describe('schedule rules with the SD defaults (100 steps, skip 32, feat (10, 70), adain (50, 100))', () => {
  const featRange: StepRange = { start: 10, end: 70 };
  const adainRange: StepRange = { start: 50, end: 100 };
  // iteration -> [step seen, mode, AdaIN after]; hand-checked from docs/method.md §3-4 and quirks 5-7
  const table: [number, number, 'off' | 'structCopy' | 'match', boolean][] = [
    [0, 0, 'off', false],
    [1, 0, 'off', false],
    [2, 1, 'off', false],
    [10, 9, 'off', false],
    [11, 10, 'structCopy', false],
    [12, 11, 'match', false],
    [16, 15, 'structCopy', false],
    [36, 35, 'structCopy', false],
    [41, 40, 'match', false], // 40 % 5 == 0 but not < 40
    [48, 47, 'match', false],
    [49, 48, 'match', true], // AdaIN from adain_range.start - 1 = 49 (the callback's own step, no lag)
    [50, 49, 'match', true],
    [67, 66, 'match', true], // last iteration of 68 (100 - 32)
    [70, 69, 'match', true],
    [71, 70, 'off', true],
  ];
  for (const [iteration, step, mode, adainAfter] of table) {
    it(`iteration ${iteration}: step ${step}, ${mode}, AdaIN ${adainAfter}`, () => {
      assert.equal(stepSeenByUnet(iteration), step);
      assert.equal(attentionMode(step, featRange), mode);
      assert.equal(adainAfterIteration(iteration, adainRange), adainAfter);
    });
  }

  it('the predicates on their own', () => {
    assert.deepEqual(
      [9, 10, 69, 70].map((s) => inFeatureRange(s, featRange)),
      [false, true, true, false],
    );
    assert.deepEqual([0, 5, 35, 40, 41].map(isStructureCopyStep), [true, true, true, false, false]);
    assert.deepEqual(
      [48, 49, 100, 101].map((s) => inAdainRange(s, adainRange)),
      [false, true, true, false],
    );
  });
});

test('V injection has no structure-copy steps: it acts at every step of the feature range', () => {
  const range = { start: 2, end: 14 };
  assert.equal(injectionMode(1, range, 'vInjection'), 'off');
  assert.equal(injectionMode(5, range, 'vInjection'), 'vInjection');
  assert.equal(injectionMode(5, range, 'match'), 'structCopy');
  assert.equal(injectionMode(6, range, 'vInjection'), 'vInjection');
  assert.equal(injectionMode(6, range, 'match'), 'match');
  assert.equal(injectionMode(14, range, 'vInjection'), 'off');
});
