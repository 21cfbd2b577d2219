/**
 * Attention (to_q, to_k, to_v without bias, to_out.0 with bias), self- or cross-attention, with an optional
 * attention processor (attention-processor.ts). Mirrors diffusers v0.19.3 `Attention` with the classic
 * `AttnProcessor` the reference runs:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/attention_processor.py
 *
 * Without a processor (or one that leaves `attend` alone), softmax(q k^T / sqrt(head_dim)) v runs as the build target
 * says: com.microsoft.MultiHeadAttention, whose memory-efficient CPU kernel never materialises the [B, heads, HW, HW]
 * scores (SD at 512x512 has 4096 tokens), or explicitly in query chunks (WebGPU).
 * `upcast_attention` only changes fp16 runs; we compute in float32, and the reference processor ignores it anyway
 * (docs/method.md, quirk 11).
 */
import { ModelBuildError } from '../../errors.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';
import { buildScaledDotProductAttention, type AttentionShape } from '../nn/scaled-dot-product-attention.js';
import type { BoundProcessor, QKV } from './attention-processor.js';

export interface AttentionConfig {
  /** Width C of the hidden states (= heads * head_dim = inner dim in the UNet). */
  readonly queryDim: number;
  /** Width of the context; null for self-attention (context = hidden states). */
  readonly crossAttentionDim: number | null;
  readonly heads: number;
}

export interface AttentionInputs {
  /** Cross-attention context [B, T, crossAttentionDim]; absent for self-attention. */
  readonly context?: Value | undefined;
  /** The processor of this module (from the UNet's ProcessorHost), if any. */
  readonly processor?: BoundProcessor | undefined;
  /** Height and width of the query token map, int64 [1] each (what a processor sees). */
  readonly tokenMap?: { readonly height: Value; readonly width: Value } | undefined;
  /** The batch and token counts the attention's chunking plans for (see models/nn/scaled-dot-product-attention.ts). */
  readonly expected: AttentionShape['expected'];
}

/**
 *   hidden ──────┬─ (editSources) ─ q ─ to_q ─┐
 *   context ─────┴─────────────────  k ─ to_k ─┼─ (editProjections) ─ attend | MultiHeadAttention ─ to_out.0
 *   (self: hidden)                   v ─ to_v ─┘
 */
export function buildAttention(scope: WeightScope, config: AttentionConfig, hidden: Value, inputs: AttentionInputs): Value {
  const { queryDim: c, heads } = config;
  const isSelf = config.crossAttentionDim === null;
  const context = isSelf ? hidden : inputs.context;
  if (context === undefined) throw new ModelBuildError(`${scope.path}: cross-attention built without a context`);
  const bound = inputs.processor;
  if (bound !== undefined && inputs.tokenMap === undefined) throw new ModelBuildError(`${scope.path}: a processor needs the token map size`);
  const ctx = bound === undefined || inputs.tokenMap === undefined ? undefined : bound.context(scope, inputs.tokenMap.height, inputs.tokenMap.width);
  const processor = bound?.processor;
  const contextDim = config.crossAttentionDim ?? c;

  let sources: QKV = { q: hidden, k: context, v: context }; // [B, S, C], [B, T, Ck], [B, T, Ck]
  if (processor?.editSources !== undefined) sources = processor.editSources(ctx!, sources);
  let qkv: QKV = {
    q: buildLinear(scope.child('to_q'), sources.q, c, c, { bias: false }), // [B, S, C]
    k: buildLinear(scope.child('to_k'), sources.k, contextDim, c, { bias: false }), // [B, T, C]
    v: buildLinear(scope.child('to_v'), sources.v, contextDim, c, { bias: false }), // [B, T, C]
  };
  if (processor?.editProjections !== undefined) qkv = processor.editProjections(ctx!, qkv);
  const attended =
    processor?.attend !== undefined
      ? processor.attend(ctx!, qkv)
      : buildScaledDotProductAttention(scope, qkv, { heads, headDim: c / heads, expected: inputs.expected }); // [B, S, C]
  bound?.done();
  return buildLinear(scope.child('to_out', 0), attended, c, c); // [B, S, C]
}
