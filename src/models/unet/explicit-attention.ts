/**
 * Attention computed node by node, for processors that need what MultiHeadAttention hides: the attention
 * probabilities (averaged over the heads, as self-segmentation clusters them) or an edit of the scores.
 * Same arithmetic as diffusers' classic `AttnProcessor`: softmax(q k^T * d^-0.5) v per head.
 */
import { Scope, type Value } from '../../onnx/graph-builder.js';
import { constFloat, constInt64, equal, identity, ifElse, matMul, mul, reduceMean, reshape, softmax, transpose } from '../../onnx/ops.js';
import type { AttentionProcessor, QKV } from './attention-processor.js';

/**
 *   q [B, S, H*D] ─ heads ─┐
 *   k [B, T, H*D] ─ heads ─ MatMul(q, k^T) * D^-0.5 ─ Softmax ─ probs [B, H, S, T] ─ MatMul(probs, v) ─ merge ─ [B, S, H*D]
 *   v [B, T, H*D] ─ heads ──────────────────────────────────────────────────────────┘
 */
export function scaledDotProductAttention(s: Scope, qkv: QKV, heads: number, headDim: number): { out: Value; probs: Value } {
  const split = (x: Value, name: string): Value =>
    transpose(s, reshape(s, x, [0, 0, heads, headDim], { name: `Reshape_${name}` }), [0, 2, 1, 3], { name: `Transpose_${name}` }); // [B, H, S|T, D]
  const q = split(qkv.q, 'q');
  const kT = transpose(s, reshape(s, qkv.k, [0, 0, heads, headDim], { name: 'Reshape_k' }), [0, 2, 3, 1], { name: 'Transpose_k' }); // [B, H, D, T]
  const v = split(qkv.v, 'v');
  const scores = mul(s, matMul(s, q, kT, { name: 'MatMul_scores' }), constFloat(s.g, headDim ** -0.5), { name: 'Mul_scale' }); // [B, H, S, T]
  const probs = softmax(s, scores, -1); // [B, H, S, T]
  const attended = matMul(s, probs, v, { name: 'MatMul_values' }); // [B, H, S, D]
  const out = reshape(s, transpose(s, attended, [0, 2, 1, 3], { name: 'Transpose_merge' }), [0, 0, heads * headDim], { name: 'Reshape_merge' }); // [B, S, C]
  return { out, probs };
}

/**
 * A processor that computes the attention itself and, on the calls where its int64 [1] input `record` is 1, writes
 * the head-averaged probabilities [B, S, T] as graph output `output` (an empty [0, 0, 0] tensor on the other calls,
 * so that calls that need no maps do not copy them out).
 */
export function attentionMapProcessor(names: { record: string; output: string }): AttentionProcessor {
  return {
    inputs: [{ name: names.record, dtype: 'int64', dims: [1], neutral: { dtype: 'int64', dims: [1], data: BigInt64Array.of(0n) } }],
    outputs: [{ name: names.output, dtype: 'float32', dims: [`${names.output}_batch`, `${names.output}_queries`, `${names.output}_keys`] }],
    attend(ctx, qkv) {
      const s = ctx.scope.sub('explicit');
      const { out, probs } = scaledDotProductAttention(s, qkv, ctx.site.heads, ctx.site.channels / ctx.site.heads);
      const g = s.g;
      const record = reshape(s, equal(s, ctx.input(names.record), constInt64(g, [1]), { name: 'Equal_record' }), [], { name: 'Reshape_record' });
      const thenG = g.subgraph(`${s.path}/record`);
      thenG.output(reduceMean(new Scope(thenG, `${s.path}/record`), probs, [1], false), `${s.path}/record/maps`, 'float32', ['B', 'S', 'T']); // [B, S, T]
      const elseG = g.subgraph(`${s.path}/skip`);
      const empty = g.constant({ dtype: 'float32', dims: [0, 0, 0], data: new Float32Array(0) });
      elseG.output(identity(new Scope(elseG, `${s.path}/skip`), empty), `${s.path}/skip/maps`, 'float32', [0, 0, 0]);
      const [maps] = ifElse(s, record, thenG, elseG, 1, { name: 'If_record' });
      ctx.output(names.output, maps!);
      return out;
    },
  };
}
