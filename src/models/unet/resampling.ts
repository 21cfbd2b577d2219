/**
 * Downsample2D (3x3 conv, stride 2) and Upsample2D (nearest x2, then 3x3 conv), both with use_conv = true.
 * Mirrors diffusers v0.19.3 `Downsample2D` and `Upsample2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py
 */
import { conv, upsampleNearest } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';

export interface Downsample2DConfig {
  readonly channels: number;
  /** downsample_padding; 0 means diffusers' asymmetric F.pad (0, 1, 0, 1) before an unpadded conv. */
  readonly padding: number;
}

export interface Upsample2DConfig {
  readonly channels: number;
}

export function buildDownsample2D(scope: WeightScope, config: Downsample2DConfig, x: Value): Value {
  const { channels, padding } = config;
  const convScope = scope.child('conv');
  if (padding !== 0) {
    return buildConv2d(convScope, x, { inChannels: channels, outChannels: channels, kernel: 3, stride: 2, padding }); // [B, C, H/2, W/2]
  }
  const w = convScope.weight('weight', [channels, channels, 3, 3]);
  const b = convScope.weight('bias', [channels]);
  return conv(convScope, x, w, b, { pads: [0, 0, 1, 1], strides: [2, 2], name: 'Conv' }); // [B, C, H/2, W/2]
}

/**
 * Plain x2: the UNet passes an explicit output size only when the map is not a multiple of 2^num_upsamplers,
 * which buildUNet rules out (h and w divisible by 2^(down blocks - 1)).
 */
export function buildUpsample2D(scope: WeightScope, config: Upsample2DConfig, x: Value): Value {
  const up = upsampleNearest(scope, x, 2, { name: 'Resize' }); // [B, C, 2H, 2W]
  return buildConv2d(scope.child('conv'), up, { inChannels: config.channels, outChannels: config.channels, kernel: 3, padding: 1 }); // [B, C, 2H, 2W]
}
