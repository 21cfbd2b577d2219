/**
 * diffusers' DownEncoderBlock2D (resnets without time embedding, then an optional Downsample2D), as in the VAE encoder.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py (class DownEncoderBlock2D)
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py (class Downsample2D)
 */
import type { Value } from '../../onnx/graph-builder.js';
import { conv } from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildResnetBlock2D } from '../nn/resnet-block-2d.js';

export interface Downsample2DConfig {
  readonly channels: number;
  readonly outChannels: number;
  /** Conv padding; 0 means diffusers' asymmetric F.pad (0, 1, 0, 1) before the conv (the VAE encoder's case). */
  readonly padding: number;
}

export interface DownEncoderBlock2DConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  /** num_layers: layers_per_block of the VAE config. */
  readonly numLayers: number;
  readonly groups: number;
  readonly eps: number;
  readonly addDownsample: boolean;
  /** downsample_padding: 0 in the VAE encoder. */
  readonly downsamplePadding: number;
}

/**
 * Downsample2D with use_conv: a 3x3 stride-2 conv (weights `conv.*`). With padding 0, diffusers pads right and bottom
 * by one first; ONNX Conv does the same with pads [top, left, bottom, right] = [0, 0, 1, 1].
 */
export function buildDownsample2D(scope: WeightScope, config: Downsample2DConfig, x: Value): Value {
  const p = config.padding;
  const pads = p === 0 ? [0, 0, 1, 1] : [p, p, p, p];
  const convScope = scope.child('conv');
  const w = convScope.weight('weight', [config.outChannels, config.channels, 3, 3]);
  const b = convScope.weight('bias', [config.outChannels]);
  return conv(convScope, x, w, b, { pads, strides: [2, 2], name: 'Conv' }); // [B, Cout, H/2, W/2]
}

/** x ─► resnets.0 ─► ... ─► resnets.{N-1} ─► downsamplers.0 (unless last block) */
export function buildDownEncoderBlock2D(scope: WeightScope, config: DownEncoderBlock2DConfig, x: Value): Value {
  const { outChannels, groups, eps } = config;
  let h = x;
  for (let i = 0; i < config.numLayers; i++) {
    const inChannels = i === 0 ? config.inChannels : outChannels;
    h = buildResnetBlock2D(scope.child('resnets', i), { inChannels, outChannels, tembChannels: null, groups, eps }, h); // [B, Cout, H, W]
  }
  if (config.addDownsample) {
    const downsampleConfig = { channels: outChannels, outChannels, padding: config.downsamplePadding };
    h = buildDownsample2D(scope.child('downsamplers', 0), downsampleConfig, h); // [B, Cout, H/2, W/2]
  }
  return h;
}
