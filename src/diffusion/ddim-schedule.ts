/**
 * The DDIM noise schedule of diffusers 0.19.3 (`DDIMScheduler.__init__` and `set_timesteps`), computed the way
 * PyTorch computes it on CPU so that `alphasCumprod` is bit-identical to `scheduler.alphas_cumprod`.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/schedulers/scheduling_ddim.py
 */
import { invalidParameterError } from '../errors.js';

export type BetaSchedule = 'scaled_linear' | 'linear';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface DdimScheduleConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  setAlphaToOne: boolean;
  stepsOffset: number;
  timestepSpacing: TimestepSpacing;
}

export interface DdimSchedule {
  /** `alphas_cumprod` (float32, numTrainTimesteps entries). */
  readonly alphasCumprod: Float32Array;
  /** 1 with set_alpha_to_one, else alphas_cumprod[0] (as a float32 value). */
  readonly finalAlphaCumprod: number;
  readonly numTrainTimesteps: number;
  /** The timesteps of `set_timesteps(numInferenceSteps)`, descending. */
  timesteps(numInferenceSteps: number): number[];
  /** `t - numTrainTimesteps // numInferenceSteps`, as DDIMScheduler.step computes it (may be negative). */
  prevTimestep(t: number, numInferenceSteps: number): number;
  /** alphas_cumprod[t], or finalAlphaCumprod when t < 0. */
  alphaCumprodAt(t: number): number;
}

const f32 = Math.fround;

/**
 * `torch.linspace(start, end, steps, dtype=float32)` on CPU (the AVX2 kernel of torch 1.13, RangeFactoriesKernel.cpp):
 * a float32 step, the first half counted from `start` and the second half from `end`, blocks of 8 lanes whose base
 * `start + step*idx` is one fused multiply-add (the kernel is built with FMA contraction) and whose lanes add
 * `k*step` to that base. Checked bit-exactly against torch for the SD betas.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // float32 fma with an exact product: step (24 bits) * index (< 2^24) fits in a double, so one fround is exact.
  const at = (idx: number): number => (idx < halfway ? f32(s + step * idx) : f32(e - step * (steps - idx - 1)));
  const lanes = 8;
  let i = 0;
  // the vectorised loop handles two 8-lane blocks per iteration while 16 values remain, the rest is scalar
  for (; i + 2 * lanes <= steps; i += 2 * lanes) {
    for (const blockStart of [i, i + lanes]) {
      const base = at(blockStart);
      for (let k = 0; k < lanes; k++) out[blockStart + k] = f32(base + k * step);
    }
  }
  for (; i < steps; i++) out[i] = at(i);
  return out;
}

/** alphas_cumprod: betas in float32, alphas = 1 - betas, cumprod accumulated in double (torch CPU acc_type) and stored as float32. */
function alphasCumprodOf(config: DdimScheduleConfig): Float32Array {
  const { numTrainTimesteps: n, betaStart, betaEnd } = config;
  const betas =
    config.betaSchedule === 'scaled_linear'
      ? torchLinspaceF32(Math.sqrt(betaStart), Math.sqrt(betaEnd), n).map((b) => f32(b * b))
      : torchLinspaceF32(betaStart, betaEnd, n);
  const out = new Float32Array(n);
  let product = 1;
  for (let i = 0; i < n; i++) {
    product *= f32(1 - (betas[i] ?? 0));
    out[i] = product;
  }
  return out;
}

/** numpy's round (half to even), as `np.round` / `.round()` in set_timesteps. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num)` in float64 (numpy's formula: i * step + start, last entry = stop). */
function numpyLinspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const step = div > 0 ? (stop - start) / div : 0;
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

function spacedTimesteps(config: DdimScheduleConfig, numInferenceSteps: number): number[] {
  const T = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return numpyLinspace(0, T - 1, numInferenceSteps)
        .map(roundHalfEven)
        .reverse();
    case 'leading': {
      const ratio = Math.floor(T / numInferenceSteps);
      return Array.from({ length: numInferenceSteps }, (_, i) => i * ratio + config.stepsOffset).reverse();
    }
    case 'trailing': {
      // np.round(np.arange(T, 0, -ratio)) - 1 with a float ratio
      const ratio = T / numInferenceSteps;
      const count = Math.ceil(T / ratio);
      return Array.from({ length: count }, (_, i) => roundHalfEven(T - i * ratio) - 1);
    }
  }
}

function checkConfig(config: DdimScheduleConfig): void {
  if (!Number.isInteger(config.numTrainTimesteps) || config.numTrainTimesteps < 1) {
    throw invalidParameterError('numTrainTimesteps', 'positive integer', config.numTrainTimesteps);
  }
  if (!Number.isInteger(config.stepsOffset) || config.stepsOffset < 0) {
    throw invalidParameterError('stepsOffset', 'non-negative integer', config.stepsOffset);
  }
  if (config.betaSchedule !== 'scaled_linear' && config.betaSchedule !== 'linear') {
    throw invalidParameterError('betaSchedule', "one of 'scaled_linear', 'linear'", config.betaSchedule);
  }
  if (!['leading', 'trailing', 'linspace'].includes(config.timestepSpacing)) {
    throw invalidParameterError('timestepSpacing', "one of 'leading', 'trailing', 'linspace'", config.timestepSpacing);
  }
  for (const key of ['betaStart', 'betaEnd'] as const) {
    const v = config[key];
    if (!Number.isFinite(v) || v < 0 || v >= 1) throw invalidParameterError(key, 'number in [0, 1)', v);
  }
}

export function ddimSchedule(config: DdimScheduleConfig): DdimSchedule {
  checkConfig(config);
  const alphasCumprod = alphasCumprodOf(config);
  const finalAlphaCumprod = config.setAlphaToOne ? 1 : (alphasCumprod[0] ?? 1);
  const T = config.numTrainTimesteps;
  const checkSteps = (numInferenceSteps: number): void => {
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > T) {
      throw invalidParameterError('numInferenceSteps', `integer between 1 and ${T}`, numInferenceSteps);
    }
  };
  return {
    alphasCumprod,
    finalAlphaCumprod,
    numTrainTimesteps: T,
    timesteps(numInferenceSteps) {
      checkSteps(numInferenceSteps);
      return spacedTimesteps(config, numInferenceSteps);
    },
    prevTimestep(t, numInferenceSteps) {
      checkSteps(numInferenceSteps);
      return t - Math.floor(T / numInferenceSteps);
    },
    alphaCumprodAt(t) {
      if (t < 0) return finalAlphaCumprod;
      const v = alphasCumprod[t];
      if (!Number.isInteger(t) || v === undefined) throw invalidParameterError('t', `integer below ${T}`, t);
      return v;
    },
  };
}
