/**
 * CLIPEncoderLayer of HF transformers' CLIPTextModel: pre-norm causal self-attention and MLP, each with a residual.
 *
 * Mirrors `CLIPAttention`, `CLIPMLP` and `CLIPEncoderLayer` of
 * https://github.com/huggingface/transformers/blob/v4.30.2/src/transformers/models/clip/modeling_clip.py
 * (the version that produced the goldens). Weight names are the checkpoint's, below
 * `text_model.encoder.layers.{i}.`.
 */
import { add, gelu, matMul, mul, quickGelu, reshape, softmax, transpose, constFloat } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import type { ClipTextConfig } from '../../config/clip-config.js';
import { buildLinear } from '../nn/linear.js';
import { buildLayerNorm } from '../nn/norm.js';

export type ClipEncoderLayerConfig = Pick<ClipTextConfig, 'hiddenSize' | 'intermediateSize' | 'numAttentionHeads' | 'headDim' | 'hiddenAct' | 'layerNormEps'>;

/**
 * One encoder layer; `scope` is at `text_model.encoder.layers.{i}`.
 *
 *   h ──► layer_norm1 ──► self_attn (causal) ──► (+) ──► layer_norm2 ──► mlp ──► (+) ──► out
 *   └───────────────────────────────────────────┘ └──────────────────────────────┘
 */
export function buildClipEncoderLayer(scope: WeightScope, config: ClipEncoderLayerConfig, hiddenStates: Value, causalMask: Value): Value {
  const norm = { channels: config.hiddenSize, eps: config.layerNormEps };
  const normed1 = buildLayerNorm(scope.child('layer_norm1'), hiddenStates, norm); // [B, T, C]
  const attended = buildClipAttention(scope.child('self_attn'), config, normed1, causalMask); // [B, T, C]
  const residual1 = add(scope, hiddenStates, attended, { name: 'Add_attn' }); // [B, T, C]
  const normed2 = buildLayerNorm(scope.child('layer_norm2'), residual1, norm); // [B, T, C]
  const mlp = buildClipMlp(scope.child('mlp'), config, normed2); // [B, T, C]
  return add(scope, residual1, mlp, { name: 'Add_mlp' }); // [B, T, C]
}

/**
 * CLIPAttention with the additive causal mask, written out as MatMul + Softmax (as in transformers; no fused op).
 * `scope` is at `...self_attn`; `causalMask` is [T, T] (0 on and below the diagonal, float32 min above).
 *
 *   x ─► q_proj ─► × head_dim^-0.5 ─► heads [B,H,T,D] ─┐
 *   x ─► k_proj ─────────────────────► heads [B,H,D,T] ─┴► MatMul ─► + mask ─► Softmax ─┐
 *   x ─► v_proj ─────────────────────► heads [B,H,T,D] ──────────────────────────────────┴► MatMul ─► merge ─► out_proj
 */
export function buildClipAttention(scope: WeightScope, config: ClipEncoderLayerConfig, x: Value, causalMask: Value): Value {
  const { hiddenSize: c, numAttentionHeads: h, headDim: d } = config;
  const g = scope.g;
  const q = buildLinear(scope.child('q_proj'), x, c, c); // [B, T, C]
  const k = buildLinear(scope.child('k_proj'), x, c, c); // [B, T, C]
  const v = buildLinear(scope.child('v_proj'), x, c, c); // [B, T, C]
  const qScaled = mul(scope, q, constFloat(g, d ** -0.5), { name: 'Mul_scale' }); // [B, T, C]
  const heads = (t: Value, name: string, perm: readonly number[]): Value =>
    transpose(scope, reshape(scope, t, [0, 0, h, d], { name: `${name}/Reshape` }), perm, { name: `${name}/Transpose` });
  const qh = heads(qScaled, 'q', [0, 2, 1, 3]); // [B, H, T, D]
  const kh = heads(k, 'k', [0, 2, 3, 1]); // [B, H, D, T]
  const vh = heads(v, 'v', [0, 2, 1, 3]); // [B, H, T, D]
  const scores = matMul(scope, qh, kh, { name: 'MatMul_qk' }); // [B, H, T, T]
  const masked = add(scope, scores, causalMask, { name: 'Add_causal_mask' }); // [B, H, T, T]
  const probs = softmax(scope, masked, -1); // [B, H, T, T]
  const context = matMul(scope, probs, vh, { name: 'MatMul_pv' }); // [B, H, T, D]
  const merged = reshape(scope, transpose(scope, context, [0, 2, 1, 3], { name: 'merge/Transpose' }), [0, 0, c], { name: 'merge/Reshape' }); // [B, T, C]
  return buildLinear(scope.child('out_proj'), merged, c, c); // [B, T, C]
}

/** CLIPMLP: fc1 -> activation (quick_gelu for SD-1's CLIP, exact erf gelu for SD-2's OpenCLIP) -> fc2. */
export function buildClipMlp(scope: WeightScope, config: ClipEncoderLayerConfig, x: Value): Value {
  const hidden = buildLinear(scope.child('fc1'), x, config.hiddenSize, config.intermediateSize); // [B, T, I]
  const act = scope.sub('activation_fn');
  const activated = config.hiddenAct === 'quick_gelu' ? quickGelu(act, hidden) : gelu(act, hidden); // [B, T, I]
  return buildLinear(scope.child('fc2'), activated, config.intermediateSize, config.hiddenSize); // [B, T, C]
}
