/**
 * Timesteps (sinusoidal projection, no weights) and TimestepEmbedding (linear_1 -> SiLU -> linear_2).
 * Mirrors diffusers v0.19.3 `get_timestep_embedding`, `Timesteps`, `TimestepEmbedding`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/embeddings.py
 */
import { cast, concat, constFloat, cos, mul, silu, sin, unsqueeze } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';

export interface TimestepsConfig {
  /** Embedding width (block_out_channels[0]). */
  readonly numChannels: number;
  readonly flipSinToCos: boolean;
  /** `freq_shift` of the UNet config (`downscale_freq_shift`). */
  readonly downscaleFreqShift: number;
}

export interface TimestepEmbeddingConfig {
  readonly inChannels: number;
  readonly timeEmbedDim: number;
}

const MAX_PERIOD = 10000;

/**
 * exp(-ln(10000) * i / (half - shift)) for i < half, rounded step by step to float32 as torch computes it
 * (float32 arange times a Python float, divided by a Python number, exp in float32).
 */
export function timestepFrequencies(numChannels: number, downscaleFreqShift: number): Float32Array {
  const half = Math.floor(numChannels / 2);
  const negLog = Math.fround(-Math.log(MAX_PERIOD));
  const divisor = Math.fround(half - downscaleFreqShift);
  return Float32Array.from({ length: half }, (_, i) => Math.exp(Math.fround(Math.fround(negLog * i) / divisor)));
}

/**
 *   timestep int64 [1] -> float -> * freqs [1, half] -> sin | cos -> concat ([cos, sin] when flipped)
 */
export function buildTimesteps(scope: WeightScope, config: TimestepsConfig, timestep: Value): Value {
  const freqs = timestepFrequencies(config.numChannels, config.downscaleFreqShift);
  const t = unsqueeze(scope, cast(scope, timestep, 'float32'), [1]); // [1, 1]
  const args = mul(scope, t, constFloat(scope.g, Array.from(freqs), [1, freqs.length])); // [1, half]
  const sinPart = sin(scope, args); // [1, half]
  const cosPart = cos(scope, args); // [1, half]
  // WebGPU's sin/cos are approximations (1e-4 off at |x| of a few radians); the embedding is tiny, the CPU exact.
  for (const v of [sinPart, cosPart]) scope.g.keepOnCpu(v, 'sin/cos of the timestep embedding need CPU accuracy');
  const parts = config.flipSinToCos ? [cosPart, sinPart] : [sinPart, cosPart];
  if (config.numChannels % 2 === 1) parts.push(constFloat(scope.g, [0], [1, 1])); // diffusers pads odd widths with 0
  return concat(scope, parts, 1); // [1, numChannels]
}

/** linear_1 -> SiLU -> linear_2 in float32 (an island under fp16: the embedding is cast to float16 at the end). */
export function buildTimestepEmbedding(scope: WeightScope, config: TimestepEmbeddingConfig, sample: Value): Value {
  const h = buildLinear(scope.child('linear_1'), sample, config.inChannels, config.timeEmbedDim, { dtype: 'float32' }); // [1, temb]
  const temb = buildLinear(scope.child('linear_2'), silu(scope, h), config.timeEmbedDim, config.timeEmbedDim, { dtype: 'float32' }); // [1, temb]
  return scope.g.target.precision === 'fp16' ? cast(scope, temb, 'float16', { name: 'Cast_fp16' }) : temb;
}
