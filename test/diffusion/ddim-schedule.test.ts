import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ddimSchedule, torchLinspaceF32, type DdimScheduleConfig } from '../../src/diffusion/ddim-schedule.js';
import { readGoldenF32, readGoldenInts } from '../helpers/read-golden-tensor.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

/** The golden's scheduler/scheduler_config.json, mapped by hand (the config parser lives elsewhere). */
function goldenConfig(): DdimScheduleConfig {
  const json = JSON.parse(readFileSync(join(sd1TinyModelDir, 'scheduler', 'scheduler_config.json'), 'utf8')) as Record<string, unknown>;
  return {
    numTrainTimesteps: json['num_train_timesteps'] as number,
    betaStart: json['beta_start'] as number,
    betaEnd: json['beta_end'] as number,
    betaSchedule: json['beta_schedule'] as 'scaled_linear',
    setAlphaToOne: json['set_alpha_to_one'] as boolean,
    stepsOffset: json['steps_offset'] as number,
    timestepSpacing: json['timestep_spacing'] as 'leading',
  };
}

describe('ddimSchedule against the sd1-tiny golden (DDIMScheduler, diffusers 0.19.3, torch 1.13 CPU)', () => {
  const schedule = ddimSchedule(goldenConfig());

  it('alphas_cumprod is bit-identical', () => {
    const expected = readGoldenF32('scheduler.alphas_cumprod').data;
    assert.equal(schedule.alphasCumprod.length, 1000);
    for (let i = 0; i < expected.length; i++) {
      if (schedule.alphasCumprod[i] !== expected[i]) assert.fail(`alphas_cumprod[${i}]: got ${schedule.alphasCumprod[i]}, expected ${expected[i]}`);
    }
  });

  it('final_alpha_cumprod is alphas_cumprod[0] (set_alpha_to_one false)', () => {
    assert.equal(schedule.finalAlphaCumprod, readGoldenF32('scheduler.final_alpha_cumprod').data[0]);
    assert.equal(schedule.alphaCumprodAt(-49), schedule.finalAlphaCumprod);
    assert.equal(schedule.alphaCumprodAt(1), schedule.alphasCumprod[1]);
  });

  for (const n of [100, 50, 20]) {
    it(`timesteps(${n}) equal scheduler.timesteps_${n}`, () => {
      assert.deepEqual(schedule.timesteps(n), readGoldenInts(`scheduler.timesteps_${n}`));
    });
  }

  it('prevTimestep is t - 1000 // N', () => {
    assert.equal(schedule.prevTimestep(651, 20), 601);
    assert.equal(schedule.prevTimestep(1, 20), -49);
    assert.equal(schedule.prevTimestep(991, 100), 981);
    assert.equal(schedule.prevTimestep(10, 3), -323);
  });

  it('validates numInferenceSteps with the house parameter error', () => {
    assert.throws(
      () => schedule.timesteps(0),
      /^InvalidParameterError: Expected integer between 1 and 1000 for numInferenceSteps but received 0 of type number$/m,
    );
    assert.throws(() => schedule.timesteps(1001), /received 1001 of type number/);
    assert.throws(() => schedule.timesteps(2.5), /received 2.5 of type number/);
    assert.throws(() => schedule.prevTimestep(10, 0), /numInferenceSteps/);
  });
});

describe('ddimSchedule spacings and schedules (values from numpy / diffusers 0.19.3 formulas)', () => {
  const base: DdimScheduleConfig = {
    numTrainTimesteps: 1000,
    betaStart: 0.00085,
    betaEnd: 0.012,
    betaSchedule: 'scaled_linear',
    setAlphaToOne: false,
    stepsOffset: 1,
    timestepSpacing: 'leading',
  };

  it("'leading' with steps_offset", () => {
    assert.deepEqual(ddimSchedule(base).timesteps(4), [751, 501, 251, 1]);
    assert.deepEqual(ddimSchedule({ ...base, stepsOffset: 0 }).timesteps(3), [666, 333, 0]);
  });

  it("'trailing': round(arange(T, 0, -T/N)) - 1", () => {
    const s = ddimSchedule({ ...base, timestepSpacing: 'trailing' });
    assert.deepEqual(s.timesteps(4), [999, 749, 499, 249]);
    // 1000/3 = 333.33: arange -> 1000, 666.67, 333.33 -> rounded 1000, 667, 333
    assert.deepEqual(s.timesteps(3), [999, 666, 332]);
  });

  it("'linspace': round(linspace(0, T-1, N)) reversed, numpy's half-to-even rounding", () => {
    const s = ddimSchedule({ ...base, timestepSpacing: 'linspace' });
    assert.deepEqual(s.timesteps(4), [999, 666, 333, 0]);
    // linspace(0, 999, 3) = [0, 499.5, 999]: 499.5 rounds to the even 500
    assert.deepEqual(s.timesteps(3), [999, 500, 0]);
    assert.deepEqual(ddimSchedule({ ...base, numTrainTimesteps: 10, timestepSpacing: 'linspace' }).timesteps(4), [9, 6, 3, 0]);
  });

  it('set_alpha_to_one gives final_alpha_cumprod 1', () => {
    assert.equal(ddimSchedule({ ...base, setAlphaToOne: true }).finalAlphaCumprod, 1);
  });

  it("'linear' betas: alphas_cumprod[0] = 1 - beta_start and [T-1] = prod(1 - betas)", () => {
    const s = ddimSchedule({ ...base, betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 });
    assert.equal(s.alphasCumprod[0], Math.fround(1 - Math.fround(0.0001)));
    let product = 1;
    for (let i = 0; i < 1000; i++) product *= Math.fround(1 - Math.fround(0.0001 + ((0.02 - 0.0001) * i) / 999));
    assert.ok(Math.abs((s.alphasCumprod[999] ?? 0) - product) < 1e-7 * product + 1e-9);
  });

  it('torchLinspaceF32 starts and ends at the float32 end points', () => {
    const l = torchLinspaceF32(Math.sqrt(0.00085), Math.sqrt(0.012), 1000);
    assert.equal(l[0], Math.fround(Math.sqrt(0.00085)));
    assert.equal(l[999], Math.fround(Math.sqrt(0.012)));
    assert.deepEqual(Array.from(torchLinspaceF32(0, 1, 5)), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(Array.from(torchLinspaceF32(3, 7, 1)), [3]);
  });

  it('rejects an invalid config', () => {
    assert.throws(() => ddimSchedule({ ...base, numTrainTimesteps: 0 }), /for numTrainTimesteps but received 0/);
    assert.throws(() => ddimSchedule({ ...base, betaEnd: 1.5 }), /for betaEnd but received 1.5/);
  });
});
