/**
 * Small SAM building blocks: LayerNorm2d (common.py), ConvTranspose2d with stride = kernel, the ReLU MLP of the
 * mask decoder (mask_decoder_hq.py `MLP`, transformers' names proj_in / layers.i / proj_out) and MLPBlock (lin1, act, lin2).
 */
import { add, constFloat, convTranspose, div, gelu, mul, reduceMean, relu, reshape, sqrt, sub } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';

/**
 * LayerNorm2d over the channels of [B, C, H, W], written as the official module computes it (two passes):
 *
 *   u = mean_C(x); s = mean_C((x - u)^2); y = weight[:, None, None] * (x - u) / sqrt(s + eps) + bias[:, None, None]
 */
export function buildLayerNorm2d(scope: WeightScope, x: Value, config: { channels: number; eps: number }): Value {
  const g = scope.g;
  const weight = reshape(scope, scope.weight('weight', [config.channels]), [-1, 1, 1], { name: 'Reshape_weight' }); // [C, 1, 1]
  const bias = reshape(scope, scope.weight('bias', [config.channels]), [-1, 1, 1], { name: 'Reshape_bias' }); // [C, 1, 1]
  const centred = sub(scope, x, reduceMean(scope, x, [1], true, { name: 'ReduceMean_u' }), { name: 'Sub_u' }); // [B, C, H, W]
  const variance = reduceMean(scope, mul(scope, centred, centred, { name: 'Mul_square' }), [1], true, { name: 'ReduceMean_s' }); // [B, 1, H, W]
  const normed = div(scope, centred, sqrt(scope, add(scope, variance, constFloat(g, config.eps), { name: 'Add_eps' })), { name: 'Div_std' });
  return add(scope, mul(scope, weight, normed, { name: 'Mul_weight' }), bias, { name: 'Add_bias' }); // [B, C, H, W]
}

/** nn.ConvTranspose2d(in, out, kernel_size=k, stride=k): [B, in, H, W] -> [B, out, kH, kW]. */
export function buildConvTranspose2d(scope: WeightScope, x: Value, config: { inChannels: number; outChannels: number; kernel: number }): Value {
  const { inChannels, outChannels, kernel } = config;
  const w = scope.weight('weight', [inChannels, outChannels, kernel, kernel]); // PyTorch layout [in, out, k, k]
  const b = scope.weight('bias', [outChannels]);
  return convTranspose(scope, x, w, b, { strides: [kernel, kernel], name: 'ConvTranspose' }); // [B, out, kH, kW]
}

export interface MlpConfig {
  readonly inputDim: number;
  readonly hiddenDim: number;
  readonly outputDim: number;
  /** Linear layers in all (>= 2): proj_in, layers.0 .. layers.{n-3}, proj_out. */
  readonly numLayers: number;
}

/** The decoder's MLP: ReLU after every layer but the last (sigmoid_output is never set in MaskDecoderHQ). */
export function buildSamMlp(scope: WeightScope, x: Value, config: MlpConfig): Value {
  const { inputDim, hiddenDim, outputDim, numLayers } = config;
  let h = relu(scope.sub('proj_in_act'), buildLinear(scope.child('proj_in'), x, inputDim, hiddenDim)); // [..., hidden]
  for (let i = 0; i < numLayers - 2; i++) {
    h = relu(scope.sub(`layers.${i}_act`), buildLinear(scope.child('layers', i), h, hiddenDim, hiddenDim)); // [..., hidden]
  }
  return buildLinear(scope.child('proj_out'), h, hiddenDim, outputDim); // [..., out]
}

/** MLPBlock: lin2(act(lin1(x))), GELU (erf) in the ViT, ReLU in the TwoWayTransformer. */
export function buildMlpBlock(scope: WeightScope, x: Value, config: { dim: number; mlpDim: number; act: 'gelu' | 'relu' }): Value {
  const hidden = buildLinear(scope.child('lin1'), x, config.dim, config.mlpDim); // [..., mlp]
  const act = scope.sub('act');
  const activated = config.act === 'gelu' ? gelu(act, hidden) : relu(act, hidden); // [..., mlp]
  return buildLinear(scope.child('lin2'), activated, config.mlpDim, config.dim); // [..., C]
}
