/**
 * diffusers' VAE Encoder: conv_in, DownEncoderBlock2D per entry of block_out_channels, UNetMidBlock2D, norm, SiLU, conv_out.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/vae.py (class Encoder)
 */
import type { Value } from '../../onnx/graph-builder.js';
import { silu } from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildGroupNorm } from '../nn/norm.js';
import { buildDownEncoderBlock2D } from './down-encoder-block-2d.js';
import { buildUNetMidBlock2D } from './unet-mid-block-2d.js';

/** Hard-coded by diffusers' Encoder for every resnet, attention and the output norm. */
const VAE_EPS = 1e-6;

export interface EncoderConfig {
  readonly inChannels: number;
  /** latent_channels; conv_out has twice as many when doubleZ (mean and log-variance). */
  readonly outChannels: number;
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: number;
  readonly normNumGroups: number;
  /** Tokens of the latent map at the model's native image size (for the mid block's attention). */
  readonly expectedTokens: number;
  readonly doubleZ: boolean;
}

/**
 *   sample ─► conv_in ─► down_blocks.0 .. down_blocks.{N-1} (downsample /2 in all but the last)
 *          ─► mid_block ─► conv_norm_out ─► SiLU ─► conv_out ─► [B, 2*latent, H/2^(N-1), W/2^(N-1)]
 */
export function buildEncoder(scope: WeightScope, config: EncoderConfig, sample: Value): Value {
  const channels = config.blockOutChannels;
  const first = channels[0]!;
  const last = channels[channels.length - 1]!;
  const groups = config.normNumGroups;
  let h = buildConv2d(scope.child('conv_in'), sample, { inChannels: config.inChannels, outChannels: first, kernel: 3, padding: 1 }); // [B, C0, H, W]
  let outChannels = first;
  channels.forEach((blockChannels, i) => {
    const inChannels = outChannels;
    outChannels = blockChannels;
    const blockConfig = {
      inChannels,
      outChannels,
      numLayers: config.layersPerBlock,
      groups,
      eps: VAE_EPS,
      addDownsample: i < channels.length - 1,
      downsamplePadding: 0,
    };
    h = buildDownEncoderBlock2D(scope.child('down_blocks', i), blockConfig, h); // [B, Ci, H/2^i', W/2^i']
  });
  const midConfig = { inChannels: last, groups, eps: VAE_EPS, attentionHeadDim: last, numLayers: 1, expectedTokens: config.expectedTokens };
  h = buildUNetMidBlock2D(scope.child('mid_block'), midConfig, h); // [B, Clast, h, w]
  h = buildGroupNorm(scope.child('conv_norm_out'), h, { channels: last, groups, eps: VAE_EPS }); // [B, Clast, h, w]
  h = silu(scope.sub('conv_act'), h);
  const convOutChannels = config.doubleZ ? 2 * config.outChannels : config.outChannels;
  return buildConv2d(scope.child('conv_out'), h, { inChannels: last, outChannels: convOutChannels, kernel: 3, padding: 1 }); // [B, 2*latent, h, w]
}
