/**
 * The ViT's `Attention` (image_encoder.py): multi-head self-attention over an H x W token grid with decomposed
 * relative positions, as the official module computes it:
 *
 *   attn = (q * scale) @ k^T + (q . Rh)[..., None] + (q . Rw)[..., None, :]      (q UNscaled in the rel-pos terms)
 *   Rh[i, k] = rel_pos_h[i - k + H - 1], Rw[j, l] = rel_pos_w[j - l + W - 1]
 *
 * Weights below `vision_encoder.layers.{i}.attn.`: qkv, proj, rel_pos_h [2H-1, head_dim], rel_pos_w [2W-1, head_dim]
 * (tables sized for the window in windowed blocks, for the grid in global ones: no interpolation at these sizes).
 */
import { add, constFloat, constInt64, gather, matMul, mul, reshape, softmax, split, squeeze, transpose, unsqueeze } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';

export interface VisionAttentionConfig {
  readonly dim: number;
  readonly heads: number;
  readonly qkvBias: boolean;
  readonly useRelPos: boolean;
  /** Token grid the attention runs on (the window, or the whole grid for global blocks). */
  readonly height: number;
  readonly width: number;
}

/** idx[i][k] = i - k + size - 1: the rows of a [2 size - 1, C] table for query i and key k. */
function relativeIndex(size: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < size; i++) for (let k = 0; k < size; k++) idx.push(i - k + size - 1);
  return idx;
}

/**
 *   q [B', H, W, D] ─ MatMul Rh^T [H, D, H] ──────────────────► rel_h [B', H, W, kH]
 *   q ─ Transpose [B', W, H, D] ─ MatMul Rw^T [W, D, W] ─ T ──► rel_w [B', H, W, kW]
 *   scores [B', HW, HW] ─ view [B', H, W, kH, kW] + rel_h[..., None] + rel_w[..., None, :] ─ view [B', HW, HW]
 */
function addDecomposedRelPos(scope: WeightScope, scores: Value, q: Value, config: VisionAttentionConfig, headDim: number): Value {
  const { height: h, width: w } = config;
  const g = scope.g;
  const relPosH = scope.weight('rel_pos_h', [2 * h - 1, headDim]); // [2H-1, D]
  const relPosW = scope.weight('rel_pos_w', [2 * w - 1, headDim]); // [2W-1, D]
  const rh = gather(scope, relPosH, constInt64(g, relativeIndex(h), [h, h]), 0, { name: 'Gather_Rh' }); // [H, kH, D]
  const rw = gather(scope, relPosW, constInt64(g, relativeIndex(w), [w, w]), 0, { name: 'Gather_Rw' }); // [W, kW, D]
  const rq = reshape(scope, q, [-1, h, w, headDim], { name: 'Reshape_rq' }); // [B', H, W, D]
  const relH = matMul(scope, rq, transpose(scope, rh, [0, 2, 1], { name: 'Transpose_Rh' }), { name: 'MatMul_rel_h' }); // [B', H, W, kH]
  const rqT = transpose(scope, rq, [0, 2, 1, 3], { name: 'Transpose_rq' }); // [B', W, H, D]
  const relWT = matMul(scope, rqT, transpose(scope, rw, [0, 2, 1], { name: 'Transpose_Rw' }), { name: 'MatMul_rel_w' }); // [B', W, H, kW]
  const relW = transpose(scope, relWT, [0, 2, 1, 3], { name: 'Transpose_rel_w' }); // [B', H, W, kW]
  const grid = reshape(scope, scores, [-1, h, w, h, w], { name: 'Reshape_scores_grid' }); // [B', H, W, kH, kW]
  const withH = add(scope, grid, unsqueeze(scope, relH, [4], { name: 'Unsqueeze_rel_h' }), { name: 'Add_rel_h' });
  const withW = add(scope, withH, unsqueeze(scope, relW, [3], { name: 'Unsqueeze_rel_w' }), { name: 'Add_rel_w' });
  return reshape(scope, withW, [-1, h * w, h * w], { name: 'Reshape_scores' }); // [B', HW, HW]
}

/**
 * x [B, H, W, C] -> [B, H, W, C].
 *
 *   x ─ qkv ─ [3, B*heads, HW, D] ─ q, k, v ─ (q * scale) @ k^T (+ rel pos) ─ Softmax ─ @ v ─ [B, H, W, C] ─ proj
 */
export function buildVisionAttention(scope: WeightScope, x: Value, config: VisionAttentionConfig): Value {
  const { dim, heads, height: h, width: w } = config;
  const headDim = dim / heads;
  const g = scope.g;
  const qkv = buildLinear(scope.child('qkv'), x, dim, 3 * dim, { bias: config.qkvBias }); // [B, H, W, 3C]
  const grouped = reshape(scope, qkv, [-1, h * w, 3, heads, headDim], { name: 'Reshape_qkv' }); // [B, HW, 3, heads, D]
  const perm = transpose(scope, grouped, [2, 0, 3, 1, 4], { name: 'Transpose_qkv' }); // [3, B, heads, HW, D]
  const flat = reshape(scope, perm, [3, -1, h * w, headDim], { name: 'Reshape_heads' }); // [3, B*heads, HW, D]
  const [q3, k3, v3] = split(scope, flat, 0, [1, 1, 1], { name: 'Split_qkv' }) as [Value, Value, Value];
  const q = squeeze(scope, q3, [0], { name: 'Squeeze_q' }); // [B', HW, D]
  const k = squeeze(scope, k3, [0], { name: 'Squeeze_k' }); // [B', HW, D]
  const v = squeeze(scope, v3, [0], { name: 'Squeeze_v' }); // [B', HW, D]
  const scaled = mul(scope, q, constFloat(g, headDim ** -0.5), { name: 'Mul_scale' }); // [B', HW, D]
  let scores = matMul(scope, scaled, transpose(scope, k, [0, 2, 1], { name: 'Transpose_k' }), { name: 'MatMul_scores' }); // [B', HW, HW]
  if (config.useRelPos) scores = addDecomposedRelPos(scope, scores, q, config, headDim);
  const probs = softmax(scope, scores, -1); // [B', HW, HW]
  const attended = matMul(scope, probs, v, { name: 'MatMul_values' }); // [B', HW, D]
  const split5 = reshape(scope, attended, [-1, heads, h, w, headDim], { name: 'Reshape_out' }); // [B, heads, H, W, D]
  const merged = reshape(scope, transpose(scope, split5, [0, 2, 3, 1, 4], { name: 'Transpose_out' }), [-1, h, w, dim], { name: 'Reshape_merge' }); // [B, H, W, C]
  return buildLinear(scope.child('proj'), merged, dim, dim); // [B, H, W, C]
}
