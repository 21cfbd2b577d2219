/**
 * SAM's TwoWayTransformer (transformer.py) below `mask_decoder.transformer.`: `layers.{i}` TwoWayAttentionBlocks, then
 * a final token-to-image attention and `layer_norm_final_attn`. The official quirks, kept:
 * - the first block's token self-attention takes no PE and has NO residual (`queries = self_attn(q, q, q)`);
 * - the token PE is the initial token tensor itself, re-added before every attention; the image PE is get_dense_pe();
 * - nn.LayerNorm with torch's default eps 1e-5; the MLP uses ReLU; attention divides q k^T by sqrt(head dim).
 */
import { add, constFloat, div, matMul, reshape, softmax, transpose } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';
import { buildLayerNorm } from '../nn/norm.js';
import { buildMlpBlock } from './layers.js';
import { TWO_WAY_LAYER_NORM_EPS, type SamMaskDecoderConfig } from './sam-configs.js';

/**
 * transformer.py `Attention` with `downsample_rate`: q/k/v projected to dim / rate, split into heads,
 * softmax(q k^T / sqrt(d)) v, heads merged, out_proj back to dim.
 *
 *   q [1, S, C] ─ q_proj ─ heads ─┐
 *   k [1, T, C] ─ k_proj ─ heads ─ MatMul ─ / sqrt(d) ─ Softmax ─┐
 *   v [1, T, C] ─ v_proj ─ heads ───────────────────────────────── MatMul ─ merge ─ out_proj ─ [1, S, C]
 */
export function buildTwoWayAttention(
  scope: WeightScope,
  qkv: { q: Value; k: Value; v: Value },
  config: { dim: number; heads: number; downsampleRate: number },
): Value {
  const { dim, heads } = config;
  const internal = dim / config.downsampleRate;
  const d = internal / heads;
  const q = buildLinear(scope.child('q_proj'), qkv.q, dim, internal); // [1, S, I]
  const k = buildLinear(scope.child('k_proj'), qkv.k, dim, internal); // [1, T, I]
  const v = buildLinear(scope.child('v_proj'), qkv.v, dim, internal); // [1, T, I]
  const separate = (x: Value, name: string, perm: readonly number[]): Value =>
    transpose(scope, reshape(scope, x, [0, 0, heads, d], { name: `Reshape_${name}` }), perm, { name: `Transpose_${name}` });
  const qh = separate(q, 'q', [0, 2, 1, 3]); // [1, heads, S, d]
  const kh = separate(k, 'k', [0, 2, 3, 1]); // [1, heads, d, T]
  const vh = separate(v, 'v', [0, 2, 1, 3]); // [1, heads, T, d]
  const scores = div(scope, matMul(scope, qh, kh, { name: 'MatMul_scores' }), constFloat(scope.g, Math.sqrt(d)), { name: 'Div_sqrt_d' }); // [1, heads, S, T]
  const out = matMul(scope, softmax(scope, scores, -1), vh, { name: 'MatMul_values' }); // [1, heads, S, d]
  const merged = reshape(scope, transpose(scope, out, [0, 2, 1, 3], { name: 'Transpose_merge' }), [0, 0, internal], { name: 'Reshape_merge' }); // [1, S, I]
  return buildLinear(scope.child('out_proj'), merged, internal, dim); // [1, S, C]
}

interface Streams {
  readonly queries: Value;
  readonly keys: Value;
}

function attnConfig(config: SamMaskDecoderConfig, downsampleRate: number): { dim: number; heads: number; downsampleRate: number } {
  return { dim: config.hiddenSize, heads: config.numAttentionHeads, downsampleRate };
}

/**
 * TwoWayAttentionBlock:
 *   queries ─ self_attn (+ PE, residual; neither in block 0) ─ layer_norm1
 *           ─ cross_attn_token_to_image (q + PE, k = keys + key PE, v = keys) ─ (+) ─ layer_norm2 ─ mlp ─ (+) ─ layer_norm3
 *   keys ─ cross_attn_image_to_token (q = keys + key PE, k = queries + PE, v = queries) ─ (+) ─ layer_norm4
 */
function buildTwoWayAttentionBlock(scope: WeightScope, s: Streams, pe: { query: Value; key: Value }, config: SamMaskDecoderConfig, first: boolean): Streams {
  const c = config.hiddenSize;
  const norm = (name: string, x: Value): Value => buildLayerNorm(scope.child(name), x, { channels: c, eps: TWO_WAY_LAYER_NORM_EPS });
  let queries: Value;
  if (first) {
    queries = buildTwoWayAttention(scope.child('self_attn'), { q: s.queries, k: s.queries, v: s.queries }, attnConfig(config, 1)); // [1, T, C]
  } else {
    const q = add(scope, s.queries, pe.query, { name: 'Add_self_pe' });
    queries = add(scope, s.queries, buildTwoWayAttention(scope.child('self_attn'), { q, k: q, v: s.queries }, attnConfig(config, 1)), { name: 'Add_self' });
  }
  queries = norm('layer_norm1', queries);
  const rate = config.attentionDownsampleRate;
  const q2 = add(scope, queries, pe.query, { name: 'Add_t2i_query_pe' }); // [1, T, C]
  const k2 = add(scope, s.keys, pe.key, { name: 'Add_t2i_key_pe' }); // [1, HW, C]
  const t2i = buildTwoWayAttention(scope.child('cross_attn_token_to_image'), { q: q2, k: k2, v: s.keys }, attnConfig(config, rate));
  queries = norm('layer_norm2', add(scope, queries, t2i, { name: 'Add_t2i' }));
  const mlp = buildMlpBlock(scope.child('mlp'), queries, { dim: c, mlpDim: config.mlpDim, act: 'relu' });
  queries = norm('layer_norm3', add(scope, queries, mlp, { name: 'Add_mlp' }));
  const q3 = add(scope, queries, pe.query, { name: 'Add_i2t_query_pe' }); // [1, T, C]
  const k3 = add(scope, s.keys, pe.key, { name: 'Add_i2t_key_pe' }); // [1, HW, C]
  const i2t = buildTwoWayAttention(scope.child('cross_attn_image_to_token'), { q: k3, k: q3, v: queries }, attnConfig(config, rate)); // [1, HW, C]
  const keys = norm('layer_norm4', add(scope, s.keys, i2t, { name: 'Add_i2t' }));
  return { queries, keys };
}

/**
 * image_embedding [1, C, h, w], image_pe [1, C, h, w], point_embedding (the tokens) [1, T, C]
 *   -> queries [1, T, C], keys [1, hw, C]
 */
export function buildTwoWayTransformer(scope: WeightScope, config: SamMaskDecoderConfig, inputs: { image: Value; imagePe: Value; tokens: Value }): Streams {
  const c = config.hiddenSize;
  const flatten = (x: Value, name: string): Value =>
    transpose(scope, reshape(scope, x, [0, c, -1], { name: `Reshape_${name}` }), [0, 2, 1], { name: `Transpose_${name}` }); // [1, hw, C]
  const keyPe = flatten(inputs.imagePe, 'image_pe');
  let s: Streams = { queries: inputs.tokens, keys: flatten(inputs.image, 'image') };
  const pe = { query: inputs.tokens, key: keyPe };
  for (let i = 0; i < config.numHiddenLayers; i++) s = buildTwoWayAttentionBlock(scope.child('layers', i), s, pe, config, i === 0);
  const q = add(scope, s.queries, pe.query, { name: 'Add_final_query_pe' });
  const k = add(scope, s.keys, pe.key, { name: 'Add_final_key_pe' });
  const attended = buildTwoWayAttention(scope.child('final_attn_token_to_image'), { q, k, v: s.keys }, attnConfig(config, config.attentionDownsampleRate));
  const queries = buildLayerNorm(scope.child('layer_norm_final_attn'), add(scope, s.queries, attended, { name: 'Add_final' }), {
    channels: c,
    eps: TWO_WAY_LAYER_NORM_EPS,
  });
  return { queries, keys: s.keys };
}
