/**
 * Downsample2D (3x3 conv, stride 2) and Upsample2D (nearest x2, then 3x3 conv), both with use_conv = true.
 * Mirrors diffusers v0.19.3 `Downsample2D` and `Upsample2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py
 */
import { concat, conv, shape, slice, upsampleNearest } from '../../onnx/ops.js';
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
 * Nearest upsampling to the size of `sizeOf` (the skip state the next up block concatenates, as diffusers passes
 * `upsample_size` so that odd maps, halved with ceil on the way down, come back to their exact size), or plain x2.
 */
export function buildUpsample2D(scope: WeightScope, config: Upsample2DConfig, x: Value, sizeOf?: Value): Value {
  const up =
    sizeOf === undefined
      ? upsampleNearest(scope, x, 2, { name: 'Resize' }) // [B, C, 2H, 2W]
      : resizeNearestLike(scope, x, sizeOf); // [B, C, H', W']
  return buildConv2d(scope.child('conv'), up, { inChannels: config.channels, outChannels: config.channels, kernel: 3, padding: 1 }); // [B, C, 2H, 2W]
}

/** F.interpolate(x, size=sizeOf.shape[2:], mode='nearest'): source index floor(dst * in / out). */
function resizeNearestLike(scope: WeightScope, x: Value, sizeOf: Value): Value {
  const batchChannels = slice(scope, shape(scope, x, { name: 'Shape_x' }), { starts: [0], ends: [2], axes: [0] }, { name: 'Slice_bc' }); // [2]
  const spatial = slice(scope, shape(scope, sizeOf, { name: 'Shape_skip' }), { starts: [2], ends: [4], axes: [0] }, { name: 'Slice_hw' }); // [2]
  const sizes = concat(scope, [batchChannels, spatial], 0, { name: 'Concat_sizes' }); // [4]
  return scope.op(
    'Resize',
    [x, null, null, sizes],
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    { name: 'Resize' },
  );
}
