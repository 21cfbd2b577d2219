/**
 * diffusers' UNetMidBlock2D without a time embedding: resnets.0, then (attentions.i, resnets.i+1) per layer.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py (class UNetMidBlock2D)
 */
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildResnetBlock2D } from '../nn/resnet-block-2d.js';
import { buildVaeAttention } from './vae-attention.js';

export interface UNetMidBlock2DConfig {
  readonly inChannels: number;
  /** resnet_groups, also the attention's norm_num_groups (resnet_time_scale_shift "default"). */
  readonly groups: number;
  readonly eps: number;
  /** attention_head_dim: block_out_channels[-1] in the VAE, i.e. one head. */
  readonly attentionHeadDim: number;
  /** num_layers (1 in the VAE): the number of attention + resnet pairs after resnets.0. */
  readonly numLayers: number;
  /** Tokens of the mid block's map at the model's native image size. */
  readonly expectedTokens: number;
}

/** x ─► resnets.0 ─► attentions.0 ─► resnets.1 ─► ... ─► attentions.{N-1} ─► resnets.N */
export function buildUNetMidBlock2D(scope: WeightScope, config: UNetMidBlock2DConfig, x: Value): Value {
  const { inChannels, groups, eps } = config;
  const resnetConfig = { inChannels, outChannels: inChannels, tembChannels: null, groups, eps };
  const attentionConfig = { channels: inChannels, headDim: config.attentionHeadDim, groups, eps, expectedTokens: config.expectedTokens };
  let h = buildResnetBlock2D(scope.child('resnets', 0), resnetConfig, x); // [B, C, H, W]
  for (let i = 0; i < config.numLayers; i++) {
    h = buildVaeAttention(scope.child('attentions', i), attentionConfig, h); // [B, C, H, W]
    h = buildResnetBlock2D(scope.child('resnets', i + 1), resnetConfig, h); // [B, C, H, W]
  }
  return h;
}
