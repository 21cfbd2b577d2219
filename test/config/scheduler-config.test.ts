import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadSchedulerConfig, parseSchedulerConfig } from '../../src/config/scheduler-config.js';
import { ConfigError } from '../../src/errors.js';
import { fixturesDir, sd1TinyModelDir } from '../helpers/paths.js';

const P = 'scheduler/scheduler_config.json';

function throwsConfig(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test('fixture and SD-1.5 DDIM configs', () => {
  for (const path of [
    join(sd1TinyModelDir, 'scheduler', 'scheduler_config.json'),
    join(fixturesDir, 'configs', 'sd-1.5', 'scheduler', 'scheduler_config.json'),
  ]) {
    const config = loadSchedulerConfig(path);
    assert.equal(config.className, 'DDIMScheduler');
    assert.equal(config.numTrainTimesteps, 1000);
    assert.equal(config.betaStart, 0.00085);
    assert.equal(config.betaEnd, 0.012);
    assert.equal(config.betaSchedule, 'scaled_linear');
    assert.equal(config.clipSample, false);
    assert.equal(config.setAlphaToOne, false);
    assert.equal(config.stepsOffset, 1);
    assert.equal(config.predictionType, 'epsilon');
    assert.equal(config.timestepSpacing, 'leading');
    assert.equal(config.trainedBetas, null);
    assert.deepEqual(config.warnings, []);
    assert.ok(Object.isFrozen(config));
  }
});

test('a PNDM config (as SD-1.5 ships) is read with DDIM defaults for absent keys', () => {
  const config = parseSchedulerConfig(
    {
      _class_name: 'PNDMScheduler',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      num_train_timesteps: 1000,
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      trained_betas: null,
      clip_sample: false,
    },
    P,
  );
  assert.equal(config.className, 'PNDMScheduler');
  assert.equal(config.stepsOffset, 1);
  assert.equal(config.predictionType, 'epsilon');
  assert.equal(config.timestepSpacing, 'leading');
  const defaults = parseSchedulerConfig({}, P);
  assert.equal(defaults.betaSchedule, 'linear');
  assert.equal(defaults.betaStart, 0.0001);
  assert.equal(defaults.betaEnd, 0.02);
  assert.equal(defaults.clipSample, true);
  assert.equal(defaults.setAlphaToOne, true);
  assert.equal(defaults.stepsOffset, 0);
});

test('v_prediction parses but is flagged; trailing spacing accepted', () => {
  const config = parseSchedulerConfig({ prediction_type: 'v_prediction', timestep_spacing: 'trailing' }, P);
  assert.equal(config.predictionType, 'v_prediction');
  assert.equal(config.timestepSpacing, 'trailing');
  assert.deepEqual(config.warnings, [`${P}: prediction_type "v_prediction" is parsed, but Eye-for-an-eye is only validated with "epsilon" models`]);
});

test('scheduler errors', () => {
  throwsConfig(
    () => parseSchedulerConfig({ beta_schedule: 'squaredcos_cap_v2' }, P),
    `${P}: field 'beta_schedule' = "squaredcos_cap_v2" is not supported (supported: "scaled_linear", "linear")`,
  );
  throwsConfig(() => parseSchedulerConfig({ trained_betas: [0.1, 0.2] }, P), `${P}: field 'trained_betas' = [0.1,0.2] is not supported (supported: null)`);
  throwsConfig(
    () => parseSchedulerConfig({ prediction_type: 'sample' }, P),
    `${P}: field 'prediction_type' = "sample" is not supported (supported: "epsilon", "v_prediction")`,
  );
  throwsConfig(
    () => parseSchedulerConfig({ timestep_spacing: 'karras' }, P),
    `${P}: field 'timestep_spacing' = "karras" is not supported (supported: "leading", "trailing", "linspace")`,
  );
  throwsConfig(() => parseSchedulerConfig({ thresholding: true }, P), `${P}: field 'thresholding' = true is not supported (supported: false)`);
  throwsConfig(() => parseSchedulerConfig({ steps_offset: -1 }, P), `${P}: field 'steps_offset' must be a non-negative integer, got -1`);
  throwsConfig(
    () => parseSchedulerConfig({ beta_start: 0.02, beta_end: 0.01 }, P),
    `${P}: field 'beta_end' must be a number between beta_start (0.02) and 1, got 0.01`,
  );
});
