/**
 * diffusers' VAE Decoder (norm_type "group"): conv_in, UNetMidBlock2D, UpDecoderBlock2D per reversed entry of
 * block_out_channels (layers_per_block + 1 resnets each), norm, SiLU, conv_out.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/vae.py (class Decoder)
 */
import type { Value } from '../../onnx/graph-builder.js';
import { silu } from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildGroupNorm } from '../nn/norm.js';
import { buildUNetMidBlock2D } from './unet-mid-block-2d.js';
import { buildUpDecoderBlock2D } from './up-decoder-block-2d.js';

/** Hard-coded by diffusers' Decoder for every resnet, attention and the output norm. */
const VAE_EPS = 1e-6;

export interface DecoderConfig {
  /** latent_channels. */
  readonly inChannels: number;
  readonly outChannels: number;
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: number;
  readonly normNumGroups: number;
  /** Tokens of the latent map at the model's native image size (for the mid block's attention). */
  readonly expectedTokens: number;
}

/**
 *   z ─► conv_in ─► mid_block ─► up_blocks.0 .. up_blocks.{N-1} (upsample x2 in all but the last)
 *     ─► conv_norm_out ─► SiLU ─► conv_out ─► [B, out, h*2^(N-1), w*2^(N-1)]
 */
export function buildDecoder(scope: WeightScope, config: DecoderConfig, z: Value): Value {
  const reversed = [...config.blockOutChannels].reverse();
  const top = reversed[0]!;
  const bottom = reversed[reversed.length - 1]!;
  const groups = config.normNumGroups;
  let h = buildConv2d(scope.child('conv_in'), z, { inChannels: config.inChannels, outChannels: top, kernel: 3, padding: 1 }); // [B, Clast, h, w]
  const midConfig = { inChannels: top, groups, eps: VAE_EPS, attentionHeadDim: top, numLayers: 1, expectedTokens: config.expectedTokens };
  h = buildUNetMidBlock2D(scope.child('mid_block'), midConfig, h); // [B, Clast, h, w]
  let outChannels = top;
  reversed.forEach((blockChannels, i) => {
    const inChannels = outChannels;
    outChannels = blockChannels;
    const blockConfig = {
      inChannels,
      outChannels,
      numLayers: config.layersPerBlock + 1,
      groups,
      eps: VAE_EPS,
      addUpsample: i < reversed.length - 1,
    };
    h = buildUpDecoderBlock2D(scope.child('up_blocks', i), blockConfig, h); // [B, Ci, h*2^i', w*2^i']
  });
  h = buildGroupNorm(scope.child('conv_norm_out'), h, { channels: bottom, groups, eps: VAE_EPS }); // [B, C0, H, W]
  h = silu(scope.sub('conv_act'), h);
  return buildConv2d(scope.child('conv_out'), h, { inChannels: bottom, outChannels: config.outChannels, kernel: 3, padding: 1 }); // [B, out, H, W]
}
