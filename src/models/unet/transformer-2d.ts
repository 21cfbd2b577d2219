/**
 * Transformer2DModel on a continuous feature map: GroupNorm -> proj_in -> transformer_blocks -> proj_out -> + x.
 * Mirrors diffusers v0.19.3 `Transformer2DModel` (is_input_continuous):
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/transformer_2d.py
 */
import { add, reshape, shape, slice, transpose } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildLinear } from '../nn/linear.js';
import { buildGroupNorm } from '../nn/norm.js';
import { buildBasicTransformerBlock } from './basic-transformer-block.js';
import type { AttentionHostPoint } from './attention-processor.js';

export interface Transformer2DConfig {
  /** in_channels = inner_dim = heads * head_dim (always equal in the UNet). */
  readonly channels: number;
  readonly heads: number;
  /** Number of transformer_blocks (transformer_layers_per_block). */
  readonly layers: number;
  readonly crossAttentionDim: number;
  readonly groups: number;
  /** SD-2: proj_in / proj_out are Linear layers on tokens instead of 1x1 convolutions. */
  readonly useLinearProjection: boolean;
}

/** The attention settings a cross-attention block gives each of its Transformer2DModels. */
export interface BlockAttentionConfig {
  readonly heads: number;
  readonly transformerLayers: number;
  readonly crossAttentionDim: number;
  readonly groups: number;
  readonly useLinearProjection: boolean;
}

/** The Transformer2DModel config of a block whose feature maps have `channels` channels. */
export function transformer2DConfig(channels: number, block: BlockAttentionConfig): Transformer2DConfig {
  const { heads, transformerLayers: layers, crossAttentionDim, groups, useLinearProjection } = block;
  return { channels, heads, layers, crossAttentionDim, groups, useLinearProjection };
}

export interface Transformer2DInputs {
  readonly encoderHiddenStates: Value;
  readonly attention: AttentionHostPoint;
}

/** What the cross-attention blocks of the UNet receive besides their input feature map. */
export interface CrossAttnBlockInputs extends Transformer2DInputs {
  /** Time embedding [1, temb] (one timestep for the whole batch). */
  readonly temb: Value;
}

/** diffusers hard-codes the GroupNorm eps of Transformer2DModel. */
const NORM_EPS = 1e-6;

/**
 *   x ─ norm ─ proj_in ─ tokens ─ transformer_blocks ─ map ─ proj_out ─ + x     (conv projection, SD-1)
 *   x ─ norm ─ tokens ─ proj_in ─ transformer_blocks ─ proj_out ─ map ─ + x     (linear projection, SD-2)
 */
export function buildTransformer2D(scope: WeightScope, config: Transformer2DConfig, x: Value, inputs: Transformer2DInputs): Value {
  const { channels: c, useLinearProjection: linear } = config;
  const xShape = shape(scope, x, { name: 'Shape_input' }); // [4]
  const height = slice(scope, xShape, { starts: [2], ends: [3], axes: [0] }, { name: 'Slice_height' }); // [1]
  const width = slice(scope, xShape, { starts: [3], ends: [4], axes: [0] }, { name: 'Slice_width' }); // [1]
  const toTokens = (v: Value): Value => transpose(scope, reshape(scope, v, [0, c, -1], { name: 'Reshape_tokens' }), [0, 2, 1], { name: 'Transpose_tokens' }); // [B, HW, C]
  const toMap = (v: Value): Value => reshape(scope, transpose(scope, v, [0, 2, 1], { name: 'Transpose_map' }), xShape, { name: 'Reshape_map' }); // [B, C, H, W]

  const normed = buildGroupNorm(scope.child('norm'), x, { channels: c, groups: config.groups, eps: NORM_EPS }); // [B, C, H, W]
  let h = linear
    ? buildLinear(scope.child('proj_in'), toTokens(normed), c, c) // [B, HW, C]
    : toTokens(buildConv2d(scope.child('proj_in'), normed, { inChannels: c, outChannels: c, kernel: 1 })); // [B, HW, C]
  for (let k = 0; k < config.layers; k++) {
    h = buildBasicTransformerBlock(scope.child('transformer_blocks', k), { dim: c, heads: config.heads, crossAttentionDim: config.crossAttentionDim }, h, {
      encoderHiddenStates: inputs.encoderHiddenStates,
      height,
      width,
      attention: inputs.attention,
    }); // [B, HW, C]
  }
  const out = linear
    ? toMap(buildLinear(scope.child('proj_out'), h, c, c)) // [B, C, H, W]
    : buildConv2d(scope.child('proj_out'), toMap(h), { inChannels: c, outChannels: c, kernel: 1 }); // [B, C, H, W]
  return add(scope, out, x, { name: 'Add_residual' }); // [B, C, H, W]
}
