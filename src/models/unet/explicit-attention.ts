/**
 * A processor that needs what MultiHeadAttention hides: the attention probabilities, averaged over the heads (as
 * self-segmentation clusters them), computed node by node (models/nn/scaled-dot-product-attention.ts).
 */
import { Scope } from '../../onnx/graph-builder.js';
import { constInt64, equal, identity, ifElse, reduceMean, reshape } from '../../onnx/ops.js';
import { explicitAttention } from '../nn/scaled-dot-product-attention.js';
import type { AttentionProcessor } from './attention-processor.js';

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
      const { out, probs } = explicitAttention(s, qkv, ctx.site.heads, ctx.site.channels / ctx.site.heads);
      const g = s.g;
      const record = reshape(s, equal(s, ctx.input(names.record), constInt64(g, [1]), { name: 'Equal_record' }), [], { name: 'Reshape_record' });
      const thenG = g.subgraph(`${s.path}/record`);
      thenG.output(reduceMean(new Scope(thenG, `${s.path}/record`), probs, [1], false), `${s.path}/record/maps`, 'float32', [
        'batch',
        `queries_${s.path}`,
        `keys_${s.path}`,
      ]); // [B, S, T]
      const elseG = g.subgraph(`${s.path}/skip`);
      const empty = g.constant({ dtype: 'float32', dims: [0, 0, 0], data: new Float32Array(0) });
      elseG.output(identity(new Scope(elseG, `${s.path}/skip`), empty), `${s.path}/skip/maps`, 'float32', [0, 0, 0]);
      const [maps] = ifElse(s, record, thenG, elseG, 1, { name: 'If_record' });
      ctx.output(names.output, maps!);
      return out;
    },
  };
}
