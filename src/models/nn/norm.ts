/**
 * torch.nn.GroupNorm (on [B, C, H, W] or [B, C, T]) and torch.nn.LayerNorm (last axis), with their weights.
 * Under fp16 they are float32 islands: the input is cast up, normalised with float32 weights and cast back.
 */
import { cast, groupNorm, layerNorm } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';

/** Runs `f` on `x` in float32 when the graph's precision is fp16 (Cast up, f, Cast down). */
export function float32Island(scope: WeightScope, x: Value, f: (x32: Value) => Value): Value {
  if (scope.g.target.precision !== 'fp16') return f(x);
  const y = f(cast(scope, x, 'float32', { name: 'Cast_fp32' }));
  return cast(scope, y, 'float16', { name: 'Cast_fp16' });
}

export function buildGroupNorm(scope: WeightScope, x: Value, config: { channels: number; groups: number; eps: number; spatialRank?: number }): Value {
  const gamma = scope.weight('weight', [config.channels], 'float32');
  const beta = scope.weight('bias', [config.channels], 'float32');
  return float32Island(scope, x, (x32) =>
    groupNorm(scope, x32, gamma, beta, { groups: config.groups, epsilon: config.eps, spatialRank: config.spatialRank ?? 2 }),
  );
}

export function buildLayerNorm(scope: WeightScope, x: Value, config: { channels: number; eps: number }): Value {
  const gamma = scope.weight('weight', [config.channels], 'float32');
  const beta = scope.weight('bias', [config.channels], 'float32');
  return float32Island(scope, x, (x32) => layerNorm(scope, x32, gamma, beta, config.eps));
}
