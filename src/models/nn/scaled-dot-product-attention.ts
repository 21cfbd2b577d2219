/**
 * softmax(q k^T / sqrt(d)) v over heads, as the build target wants it (src/onnx/target.ts): fused in
 * com.microsoft.MultiHeadAttention, or explicit (MatMul / Softmax / MatMul, diffusers' classic AttnProcessor
 * arithmetic) in query chunks sized so that one chunk's [B, heads, queries, keys] scores stay within the target's
 * budget at the expected batch and token counts.
 */
import { Scope, type Value } from '../../onnx/graph-builder.js';
import { activationType } from '../../onnx/target.js';
import {
  cast,
  concat,
  constFloat,
  constInt64,
  div,
  greater,
  identity,
  ifElse,
  matMul,
  mul,
  multiHeadAttention,
  reshape,
  shape,
  slice,
  softmax,
  transpose,
} from '../../onnx/ops.js';

/** Q [B, S, H*D], K and V [B, T, H*D]. */
export interface QKV {
  readonly q: Value;
  readonly k: Value;
  readonly v: Value;
}

export interface AttentionShape {
  readonly heads: number;
  readonly headDim: number;
  /** What the chunking plans for (token counts at the model's native size, the largest batch it is run with). */
  readonly expected: { readonly batch: number; readonly queries: number; readonly keys: number };
}

/** Most chunks one attention is split into (each chunk is a MatMul / Softmax / MatMul of its own). */
const MAX_CHUNKS = 64;

/**
 *   q [B, S, H*D] ─ heads ─┐
 *   k [B, T, H*D] ─ heads ─ MatMul(q, k^T) * D^-0.5 ─ Softmax ─ probs [B, H, S, T] ─ MatMul(probs, v) ─ merge ─ [B, S, H*D]
 *   v [B, T, H*D] ─ heads ──────────────────────────────────────────────────────────┘
 */
export function explicitAttention(s: Scope, qkv: QKV, heads: number, headDim: number): { out: Value; probs: Value } {
  const split = (x: Value, name: string): Value =>
    transpose(s, reshape(s, x, [0, 0, heads, headDim], { name: `Reshape_${name}` }), [0, 2, 1, 3], { name: `Transpose_${name}` }); // [B, H, S|T, D]
  const q = split(qkv.q, 'q');
  const kT = transpose(s, reshape(s, qkv.k, [0, 0, heads, headDim], { name: 'Reshape_k' }), [0, 2, 3, 1], { name: 'Transpose_k' }); // [B, H, D, T]
  const v = split(qkv.v, 'v');
  // Under fp16 the scaling and the softmax are float32 (the scores cast up, the probabilities cast back).
  const fp16 = s.g.target.precision === 'fp16';
  const raw = matMul(s, q, kT, { name: 'MatMul_scores' }); // [B, H, S, T]
  const scores = mul(s, fp16 ? cast(s, raw, 'float32', { name: 'Cast_scores' }) : raw, constFloat(s.g, headDim ** -0.5), { name: 'Mul_scale' }); // [B, H, S, T]
  const probs32 = softmax(s, scores, -1); // [B, H, S, T]
  const probs = fp16 ? cast(s, probs32, 'float16', { name: 'Cast_probs' }) : probs32;
  const attended = matMul(s, probs, v, { name: 'MatMul_values' }); // [B, H, S, D]
  const out = reshape(s, transpose(s, attended, [0, 2, 1, 3], { name: 'Transpose_merge' }), [0, 0, heads * headDim], { name: 'Reshape_merge' }); // [B, S, C]
  return { out, probs: probs32 };
}

/** How many query chunks keep one chunk's scores within the budget (1 for fused attention). */
export function queryChunks(s: Scope, spec: AttentionShape): number {
  const target = s.g.target;
  if (target.attention === 'fused') return 1;
  const { batch, queries, keys } = spec.expected;
  const bytes = 4 * batch * spec.heads * queries * keys;
  return Math.min(MAX_CHUNKS, Math.max(1, Math.ceil(bytes / target.scoresBudgetBytes)));
}

/**
 * The attention of one module. Explicit attention in K > 1 chunks splits the queries at floor(i S / K); every chunk is
 * non-empty when S >= K (WebGPU refuses empty dispatches), and an If runs it unchunked for shorter sequences.
 *
 *   S >= K ? Concat_i(explicit(q[:, floor(iS/K) : floor((i+1)S/K)], k, v)) : explicit(q, k, v)
 */
export function buildScaledDotProductAttention(scope: Scope, qkv: QKV, spec: AttentionShape): Value {
  const { heads, headDim } = spec;
  if (scope.g.target.attention === 'fused') return multiHeadAttention(scope, qkv.q, qkv.k, qkv.v, heads); // [B, S, C]
  const chunks = queryChunks(scope, spec);
  if (chunks === 1) return explicitAttention(scope.child('explicit'), qkv, heads, headDim).out;
  const g = scope.g;
  const seq = slice(scope, shape(scope, qkv.q, { name: 'Shape_queries' }), { starts: [1], ends: [2], axes: [0] }, { name: 'Slice_queries' }); // [1]
  const longEnough = reshape(scope, greater(scope, seq, constInt64(g, [chunks - 1]), { name: 'Greater_queries' }), [], { name: 'Reshape_long' }); // []

  // Dims of the same name are taken to be equal by onnxruntime: the query count is named per module.
  const queries = `queries_${scope.path}`;
  const thenG = g.subgraph(`${scope.path}/chunked`);
  const ts = new Scope(thenG, `${scope.path}/chunked`);
  const bound = (i: number): Value =>
    div(ts, mul(ts, seq, constInt64(g, [i]), { name: `Mul_bound_${i}` }), constInt64(g, [chunks]), { name: `Div_bound_${i}` }); // [1]
  const parts: Value[] = [];
  for (let i = 0; i < chunks; i++) {
    const q = slice(ts, qkv.q, { starts: bound(i), ends: bound(i + 1), axes: [1] }, { name: `Slice_chunk_${i}` }); // [B, S_i, C]
    parts.push(explicitAttention(ts.child(`chunk_${i}`), { ...qkv, q }, heads, headDim).out); // [B, S_i, C]
  }
  thenG.output(concat(ts, parts, 1, { name: 'Concat_chunks' }), `${scope.path}/chunked/out`, activationType(g.target), ['batch', queries, heads * headDim]);

  const elseG = g.subgraph(`${scope.path}/whole`);
  const es = new Scope(elseG, `${scope.path}/whole`);
  elseG.output(identity(es, explicitAttention(es, qkv, heads, headDim).out), `${scope.path}/whole/out`, activationType(g.target), [
    'batch',
    queries,
    heads * headDim,
  ]);
  return ifElse(scope, longEnough, thenG, elseG, 1, { name: 'If_chunked' })[0]!; // [B, S, C]
}
