/**
 * The ViT `Block` (image_encoder.py) below `vision_encoder.layers.{i}.`: pre-norm attention (windowed or global) and
 * MLP, each with a residual. Windowed blocks pad the LayerNorm-ed grid with ZEROS to a multiple of the window and do
 * not mask the pad tokens (their q/k/v are the qkv bias and they enter the softmax of the edge windows), exactly as
 * `window_partition` does.
 */
import { add, constInt64, reshape, slice, transpose } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLayerNorm } from '../nn/norm.js';
import { buildMlpBlock } from './layers.js';
import type { SamVisionConfig } from './sam-configs.js';
import { buildVisionAttention } from './vision-attention.js';

export interface VisionLayerConfig {
  readonly vision: SamVisionConfig;
  /** 0 for a global-attention block. */
  readonly windowSize: number;
  /** The token grid (imageSize / patchSize). */
  readonly grid: number;
}

/** [B, H, W, C] zero-padded to [B, Hp, Wp, C] and cut into windows [B * nWindows, ws, ws, C]. */
function windowPartition(scope: WeightScope, x: Value, grid: number, ws: number, dim: number): Value {
  const padded = Math.ceil(grid / ws) * ws;
  let h = x;
  if (padded > grid) {
    const pads = constInt64(scope.g, [0, 0, 0, 0, 0, padded - grid, padded - grid, 0]);
    h = scope.op('Pad', [x, pads], { mode: 'constant' }, { name: 'Pad_window' }); // [B, Hp, Wp, C] (zeros)
  }
  const n = padded / ws;
  const blocks = reshape(scope, h, [-1, n, ws, n, ws, dim], { name: 'Reshape_partition' }); // [B, nH, ws, nW, ws, C]
  const windows = transpose(scope, blocks, [0, 1, 3, 2, 4, 5], { name: 'Transpose_partition' }); // [B, nH, nW, ws, ws, C]
  return reshape(scope, windows, [-1, ws, ws, dim], { name: 'Reshape_windows' }); // [B*nH*nW, ws, ws, C]
}

/** Windows [B * nWindows, ws, ws, C] back to [B, Hp, Wp, C], the padding cut off -> [B, H, W, C]. */
function windowUnpartition(scope: WeightScope, windows: Value, grid: number, ws: number, dim: number): Value {
  const padded = Math.ceil(grid / ws) * ws;
  const n = padded / ws;
  const blocks = reshape(scope, windows, [-1, n, n, ws, ws, dim], { name: 'Reshape_unpartition' }); // [B, nH, nW, ws, ws, C]
  const grid6 = transpose(scope, blocks, [0, 1, 3, 2, 4, 5], { name: 'Transpose_unpartition' }); // [B, nH, ws, nW, ws, C]
  const full = reshape(scope, grid6, [-1, padded, padded, dim], { name: 'Reshape_grid' }); // [B, Hp, Wp, C]
  if (padded === grid) return full;
  return slice(scope, full, { starts: [0, 0], ends: [grid, grid], axes: [1, 2] }, { name: 'Slice_unpad' }); // [B, H, W, C]
}

/**
 *   x ─ layer_norm1 ─ [pad + partition] ─ attn ─ [unpartition + crop] ─ (+ x) ─┬─ layer_norm2 ─ mlp ─ (+) ─ out
 */
export function buildVisionLayer(scope: WeightScope, x: Value, config: VisionLayerConfig): Value {
  const v = config.vision;
  const dim = v.hiddenSize;
  const ws = config.windowSize;
  const normed = buildLayerNorm(scope.child('layer_norm1'), x, { channels: dim, eps: v.layerNormEps }); // [B, H, W, C]
  const side = ws > 0 ? ws : config.grid;
  const attnIn = ws > 0 ? windowPartition(scope.sub('window_partition'), normed, config.grid, ws, dim) : normed; // [B', side, side, C]
  const attnConfig = { dim, heads: v.numAttentionHeads, qkvBias: v.qkvBias, useRelPos: v.useRelPos, height: side, width: side };
  const attended = buildVisionAttention(scope.child('attn'), attnIn, attnConfig); // [B', side, side, C]
  const attnOut = ws > 0 ? windowUnpartition(scope.sub('window_unpartition'), attended, config.grid, ws, dim) : attended; // [B, H, W, C]
  const residual = add(scope, x, attnOut, { name: 'Add_attn' }); // [B, H, W, C]
  const normed2 = buildLayerNorm(scope.child('layer_norm2'), residual, { channels: dim, eps: v.layerNormEps }); // [B, H, W, C]
  const mlp = buildMlpBlock(scope.child('mlp'), normed2, { dim, mlpDim: v.mlpDim, act: 'gelu' }); // [B, H, W, C]
  return add(scope, residual, mlp, { name: 'Add_mlp' }); // [B, H, W, C]
}
