/**
 * diffusers' Attention as the VAE mid block builds it: group_norm, one head over the channels, residual.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/attention_processor.py (class Attention,
 * AttnProcessor2_0 for 4-D input) with the arguments of UNetMidBlock2D in
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py (class UNetMidBlock2D)
 *
 * Checkpoints saved before diffusers 0.14 name the projections query/key/value/proj_attn; diffusers renames them on
 * load (`_from_deprecated_attn_block`). We read whichever name the file has; the ONNX initializer keeps it verbatim.
 * rescale_output_factor is 1 (output_scale_factor of the VAE mid block), so there is no final division.
 */
import { ModelBuildError } from '../../errors.js';
import type { Value } from '../../onnx/graph-builder.js';
import { add, reshape, shape, transpose } from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';
import { buildGroupNorm } from '../nn/norm.js';
import { buildScaledDotProductAttention } from '../nn/scaled-dot-product-attention.js';

export interface VaeAttentionConfig {
  /** query_dim: the channels of the feature map. */
  readonly channels: number;
  /** dim_head; the VAE passes attention_head_dim = channels, hence one head. */
  readonly headDim: number;
  /** norm_num_groups of group_norm. */
  readonly groups: number;
  /** eps of group_norm (resnet_eps, 1e-6 in the VAE). */
  readonly eps: number;
  /** Tokens of the map at the model's native image size (what attention chunking plans for). */
  readonly expectedTokens: number;
}

/** The VAE encodes and decodes one image at a time in the pipeline. */
const EXPECTED_BATCH = 1;

/** Current diffusers name of each projection, and the name older checkpoints use. */
const PROJECTIONS = {
  toQ: ['to_q', 'query'],
  toK: ['to_k', 'key'],
  toV: ['to_v', 'value'],
  toOut: ['to_out.0', 'proj_attn'],
} as const;

/** The child scope of the projection under whichever name the weights have (the current one when neither). */
function projectionScope(scope: WeightScope, [current, legacy]: readonly [string, string]): WeightScope {
  const name = !scope.hasWeight(`${current}.weight`) && scope.hasWeight(`${legacy}.weight`) ? legacy : current;
  return scope.child(name);
}

/**
 *   x [B,C,H,W] ─► group_norm ─► Reshape [B,C,HW] ─► Transpose [B,HW,C] ─► to_q / to_k / to_v
 *       │                                 MultiHeadAttention (C/dim_head heads) ◄─┘
 *       │                                   └─► to_out.0 ─► Transpose [B,C,HW] ─► Reshape [B,C,H,W]
 *       └─────────────────────────────────────────────────────────────────────────────► (+) ─► out
 */
export function buildVaeAttention(scope: WeightScope, config: VaeAttentionConfig, x: Value): Value {
  const { channels, headDim, groups, eps } = config;
  if (channels % headDim !== 0) {
    throw new ModelBuildError(`${scope.prefix}: ${channels} channels are not a multiple of attention_head_dim ${headDim}`);
  }
  // GroupNorm over [B, C, HW] (as diffusers does it) equals GroupNorm over [B, C, H, W].
  const normed = buildGroupNorm(scope.child('group_norm'), x, { channels, groups, eps }); // [B, C, H, W]
  const flat = reshape(scope, normed, [0, 0, -1], { name: 'Reshape_tokens' }); // [B, C, HW]
  const tokens = transpose(scope, flat, [0, 2, 1], { name: 'Transpose_tokens' }); // [B, HW, C]
  const q = buildLinear(projectionScope(scope, PROJECTIONS.toQ), tokens, channels, channels); // [B, HW, C]
  const k = buildLinear(projectionScope(scope, PROJECTIONS.toK), tokens, channels, channels); // [B, HW, C]
  const v = buildLinear(projectionScope(scope, PROJECTIONS.toV), tokens, channels, channels); // [B, HW, C]
  const expected = { batch: EXPECTED_BATCH, queries: config.expectedTokens, keys: config.expectedTokens };
  const attended = buildScaledDotProductAttention(scope.sub('processor'), { q, k, v }, { heads: channels / headDim, headDim, expected }); // [B, HW, C]
  const projected = buildLinear(projectionScope(scope, PROJECTIONS.toOut), attended, channels, channels); // [B, HW, C]
  const back = transpose(scope, projected, [0, 2, 1], { name: 'Transpose_map' }); // [B, C, HW]
  const map = reshape(scope, back, shape(scope, x, { name: 'Shape_input' }), { name: 'Reshape_map' }); // [B, C, H, W]
  return add(scope, map, x, { name: 'Add_residual' }); // [B, C, H, W]
}
