/**
 * diffusers' UpDecoderBlock2D (resnets without time embedding, then an optional Upsample2D), as in the VAE decoder.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py (class UpDecoderBlock2D)
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py (class Upsample2D)
 */
import type { Value } from '../../onnx/graph-builder.js';
import { upsampleNearest } from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildResnetBlock2D } from '../nn/resnet-block-2d.js';

export interface Upsample2DConfig {
  readonly channels: number;
  readonly outChannels: number;
}

export interface UpDecoderBlock2DConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  /** num_layers: layers_per_block + 1 in the VAE decoder. */
  readonly numLayers: number;
  readonly groups: number;
  readonly eps: number;
  readonly addUpsample: boolean;
}

/** Upsample2D with use_conv: nearest x2 (F.interpolate scale_factor 2), then a 3x3 conv (weights `conv.*`). */
export function buildUpsample2D(scope: WeightScope, config: Upsample2DConfig, x: Value): Value {
  const up = upsampleNearest(scope, x, 2, { name: 'Resize_nearest' }); // [B, C, 2H, 2W]
  return buildConv2d(scope.child('conv'), up, { inChannels: config.channels, outChannels: config.outChannels, kernel: 3, padding: 1 }); // [B, Cout, 2H, 2W]
}

/** x ─► resnets.0 ─► ... ─► resnets.{N-1} ─► upsamplers.0 (unless last block) */
export function buildUpDecoderBlock2D(scope: WeightScope, config: UpDecoderBlock2DConfig, x: Value): Value {
  const { outChannels, groups, eps } = config;
  let h = x;
  for (let i = 0; i < config.numLayers; i++) {
    const inChannels = i === 0 ? config.inChannels : outChannels;
    h = buildResnetBlock2D(scope.child('resnets', i), { inChannels, outChannels, tembChannels: null, groups, eps }, h); // [B, Cout, H, W]
  }
  if (config.addUpsample) {
    h = buildUpsample2D(scope.child('upsamplers', 0), { channels: outChannels, outChannels }, h); // [B, Cout, 2H, 2W]
  }
  return h;
}
