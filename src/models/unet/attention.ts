/**
 * Attention (to_q, to_k, to_v without bias, to_out.0 with bias), self- or cross-attention.
 * Mirrors diffusers v0.19.3 `Attention` with the classic `AttnProcessor` the reference runs:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/attention_processor.py
 *
 * softmax(q k^T / sqrt(head_dim)) v runs in com.microsoft.MultiHeadAttention, whose memory-efficient kernel never
 * materialises the [B, heads, HW, HW] scores (SD at 512x512 has 4096 tokens). `upcast_attention` only changes fp16
 * runs; we compute in float32, and the reference processor ignores it anyway (golden README quirk 11).
 */
import { ModelBuildError } from '../../errors.js';
import { multiHeadAttention } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';
import type { Attn1Edit } from './hook.js';

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
  /** Replaces the hidden states that Q/K and V are computed from (the attn1 hook, self-attention only). */
  readonly transformInput?: ((scope: WeightScope, hidden: Value) => Attn1Edit) | undefined;
}

/**
 *   hidden ─(transformInput)─┬─ qk ─ to_q ───────────────┐
 *                            ├─ qk ─ to_k ── (self) ─────┤
 *                            └─ v ── to_v ── (self) ── MultiHeadAttention ── to_out.0
 *   context (cross) ──────────────── to_k, to_v ─────────┘
 */
export function buildAttention(scope: WeightScope, config: AttentionConfig, hidden: Value, inputs: AttentionInputs = {}): Value {
  const { queryDim: c, heads } = config;
  const isSelf = config.crossAttentionDim === null;
  if (!isSelf && inputs.transformInput !== undefined) throw new ModelBuildError(`${scope.path}: an input transform is for self-attention only`);
  const input = inputs.transformInput === undefined ? { qk: hidden, v: hidden } : inputs.transformInput(scope, hidden); // [B, S, C] each
  const context = isSelf ? { qk: input.qk, v: input.v } : { qk: inputs.context, v: inputs.context };
  if (context.qk === undefined || context.v === undefined) throw new ModelBuildError(`${scope.path}: cross-attention built without a context`);
  const contextDim = config.crossAttentionDim ?? c;
  const q = buildLinear(scope.child('to_q'), input.qk, c, c, { bias: false }); // [B, S, C]
  const k = buildLinear(scope.child('to_k'), context.qk, contextDim, c, { bias: false }); // [B, T, C]
  const v = buildLinear(scope.child('to_v'), context.v, contextDim, c, { bias: false }); // [B, T, C]
  const attended = multiHeadAttention(scope, q, k, v, heads); // [B, S, C]
  return buildLinear(scope.child('to_out', 0), attended, c, c); // [B, S, C]
}
