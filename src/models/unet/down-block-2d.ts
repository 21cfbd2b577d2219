/**
 * DownBlock2D: resnets, then an optional Downsample2D; every intermediate state is kept for the skip connections.
 * Mirrors diffusers v0.19.3 `DownBlock2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py
 */
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildResnetBlock2D, type ResnetBlock2DConfig } from '../nn/resnet-block-2d.js';
import { buildDownsample2D } from './resampling.js';

export interface DownBlock2DConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly tembChannels: number;
  /** Number of resnets (layers_per_block). */
  readonly layers: number;
  readonly groups: number;
  readonly eps: number;
  readonly addDownsample: boolean;
  readonly downsamplePadding: number;
}

export interface DownBlockOutput {
  readonly hidden: Value;
  /** The block's output_states, oldest first (one per resnet, plus the downsampled state). */
  readonly resSamples: readonly Value[];
}

/** Config of resnet `j` of a down block (the first one maps in -> out channels). */
export function downResnetConfig(config: DownBlock2DConfig, j: number): ResnetBlock2DConfig {
  return {
    inChannels: j === 0 ? config.inChannels : config.outChannels,
    outChannels: config.outChannels,
    tembChannels: config.tembChannels,
    groups: config.groups,
    eps: config.eps,
    outputScaleFactor: 1,
  };
}

/**
 *   x ─ resnets.0 ─ ... ─ resnets.{L-1} ─ downsamplers.0
 *         ▼                   ▼                 ▼          (res samples)
 */
export function buildDownBlock2D(scope: WeightScope, config: DownBlock2DConfig, x: Value, temb: Value): DownBlockOutput {
  const resSamples: Value[] = [];
  let h = x;
  for (let j = 0; j < config.layers; j++) {
    h = buildResnetBlock2D(scope.child('resnets', j), downResnetConfig(config, j), h, temb); // [B, out, H, W]
    resSamples.push(h);
  }
  if (config.addDownsample) {
    h = buildDownsample2D(scope.child('downsamplers', 0), { channels: config.outChannels, padding: config.downsamplePadding }, h); // [B, out, H/2, W/2]
    resSamples.push(h);
  }
  return { hidden: h, resSamples };
}
