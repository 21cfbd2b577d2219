/** torch.nn.Conv2d with square kernel, symmetric padding. */
import { conv } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';

export interface Conv2dConfig {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number;
  padding?: number;
  bias?: boolean;
}

export function buildConv2d(scope: WeightScope, x: Value, config: Conv2dConfig): Value {
  const { inChannels, outChannels, kernel } = config;
  const pad = config.padding ?? 0;
  const stride = config.stride ?? 1;
  const w = scope.weight('weight', [outChannels, inChannels, kernel, kernel]);
  const b = config.bias === false ? null : scope.weight('bias', [outChannels]);
  return conv(scope, x, w, b, { pads: [pad, pad, pad, pad], strides: [stride, stride], name: 'Conv' }); // [B, out, H', W']
}
