/**
 * diffusers' ResnetBlock2D without a time embedding (temb_channels=None), as the VAE uses it.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py (class ResnetBlock2D)
 *
 * The UNet's version (src/models/unet/resnet-block-2d.ts) adds time_emb_proj; the two are to be merged.
 * Fixed by the VAE: pre_norm, time_embedding_norm "default", SiLU, output_scale_factor 1, dropout 0 (inference).
 */
import { add, silu } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildGroupNorm } from '../nn/norm.js';

export interface ResnetBlock2DConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  /** resnet_groups (norm_num_groups of the VAE config), for norm1 and norm2. */
  readonly groups: number;
  /** resnet_eps: 1e-6 in the VAE. */
  readonly eps: number;
}

/**
 *   x ─► norm1 ─► SiLU ─► conv1 ─► norm2 ─► SiLU ─► conv2 ─► (+) ─► out
 *   └──────────── conv_shortcut (1x1, only when in != out) ───┘
 */
export function buildResnetBlock2D(scope: WeightScope, config: ResnetBlock2DConfig, x: Value): Value {
  const { inChannels, outChannels, groups, eps } = config;
  let h = buildGroupNorm(scope.child('norm1'), x, { channels: inChannels, groups, eps }); // [B, Cin, H, W]
  h = silu(scope.sub('nonlinearity_1'), h);
  h = buildConv2d(scope.child('conv1'), h, { inChannels, outChannels, kernel: 3, padding: 1 }); // [B, Cout, H, W]
  h = buildGroupNorm(scope.child('norm2'), h, { channels: outChannels, groups, eps }); // [B, Cout, H, W]
  h = silu(scope.sub('nonlinearity_2'), h);
  h = buildConv2d(scope.child('conv2'), h, { inChannels: outChannels, outChannels, kernel: 3, padding: 1 }); // [B, Cout, H, W]
  const shortcut = inChannels === outChannels
    ? x
    : buildConv2d(scope.child('conv_shortcut'), x, { inChannels, outChannels, kernel: 1 }); // [B, Cout, H, W]
  return add(scope, shortcut, h, { name: 'Add_residual' }); // [B, Cout, H, W]
}
