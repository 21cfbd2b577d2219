/**
 * Scheduler config (scheduler/scheduler_config.json). The method always samples with a DDIM schedule built from
 * this file, as `DDIMScheduler.from_config` does: the class named in `_class_name` (DDIM, PNDM, ...) does not
 * matter, the shared fields are read and absent ones take the DDIMScheduler 0.19.3 defaults.
 */
import { ConfigReader, deepFreeze, isString, loadJsonConfig } from './config-reader.js';

export type BetaSchedule = 'scaled_linear' | 'linear';
export type PredictionType = 'epsilon' | 'v_prediction';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface SchedulerConfig {
  /** The class the checkpoint was saved with (e.g. PNDMScheduler for SD-1.5); informational only. */
  readonly className: string | null;
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: BetaSchedule;
  /** Always null: explicit trained betas are not supported. */
  readonly trainedBetas: null;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  readonly setAlphaToOne: boolean;
  readonly stepsOffset: number;
  readonly predictionType: PredictionType;
  readonly timestepSpacing: TimestepSpacing;
  /** Parsed but unvalidated settings (v_prediction); callers decide whether to refuse or warn. */
  readonly warnings: readonly string[];
}

export function parseSchedulerConfig(json: unknown, path: string): SchedulerConfig {
  const r = ConfigReader.from(json, path);
  r.fixed('trained_betas', null);
  r.fixed('thresholding', false);
  r.fixed('rescale_betas_zero_snr', false);
  const betaStart = r.positiveNumber('beta_start', 0.0001);
  const betaEnd = r.positiveNumber('beta_end', 0.02);
  if (!(betaStart < betaEnd && betaEnd < 1)) throw r.invalid('beta_end', `a number between beta_start (${betaStart}) and 1`, betaEnd);
  const predictionType = r.choice<PredictionType>('prediction_type', ['epsilon', 'v_prediction'], 'epsilon');
  const warnings: string[] = [];
  if (predictionType === 'v_prediction') {
    warnings.push(`${path}: prediction_type "v_prediction" is parsed, but Eye-for-an-eye is only validated with "epsilon" models`);
  }
  const config: SchedulerConfig = {
    className: r.nullable('_class_name', isString, 'a string', null),
    numTrainTimesteps: r.positiveInt('num_train_timesteps', 1000),
    betaStart,
    betaEnd,
    betaSchedule: r.choice<BetaSchedule>('beta_schedule', ['scaled_linear', 'linear'], 'linear'),
    trainedBetas: null,
    clipSample: r.boolean('clip_sample', true),
    clipSampleRange: r.positiveNumber('clip_sample_range', 1),
    setAlphaToOne: r.boolean('set_alpha_to_one', true),
    stepsOffset: r.nonNegativeInt('steps_offset', 0),
    predictionType,
    timestepSpacing: r.choice<TimestepSpacing>('timestep_spacing', ['leading', 'trailing', 'linspace'], 'leading'),
    warnings,
  };
  return deepFreeze(config);
}

/** Read and parse `scheduler/scheduler_config.json`. */
export function loadSchedulerConfig(path: string): SchedulerConfig {
  return parseSchedulerConfig(loadJsonConfig(path), path);
}
