/** torch.nn.GroupNorm (on [B, C, H, W] or [B, C, T]) and torch.nn.LayerNorm (last axis), with their weights. */
import { groupNorm, layerNorm } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';

export function buildGroupNorm(scope: WeightScope, x: Value, config: { channels: number; groups: number; eps: number; spatialRank?: number }): Value {
  const gamma = scope.weight('weight', [config.channels]);
  const beta = scope.weight('bias', [config.channels]);
  return groupNorm(scope, x, gamma, beta, { groups: config.groups, epsilon: config.eps, spatialRank: config.spatialRank ?? 2 });
}

export function buildLayerNorm(scope: WeightScope, x: Value, config: { channels: number; eps: number }): Value {
  const gamma = scope.weight('weight', [config.channels]);
  const beta = scope.weight('bias', [config.channels]);
  return layerNorm(scope, x, gamma, beta, config.eps);
}
