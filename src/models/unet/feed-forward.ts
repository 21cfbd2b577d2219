/**
 * FeedForward with a GEGLU input projection (the only activation SD's transformer blocks use).
 * Mirrors diffusers v0.19.3 `FeedForward` and `GEGLU`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/attention.py
 */
import { gelu, mul, split } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLinear } from '../nn/linear.js';

export interface FeedForwardConfig {
  /** Token width C (dim = dim_out). */
  readonly dim: number;
  /** Inner width = mult * dim; diffusers' default mult is 4. */
  readonly mult: number;
}

/**
 *   x ─ net.0.proj (C -> 2*inner) ─ split ─ hidden * gelu(gate) ─ net.2 (inner -> C)
 */
export function buildFeedForward(scope: WeightScope, config: FeedForwardConfig, x: Value): Value {
  const inner = config.dim * config.mult;
  const geglu = scope.child('net', 0);
  const projected = buildLinear(geglu.child('proj'), x, config.dim, 2 * inner); // [B, S, 2*inner]
  const [hidden, gate] = split(geglu, projected, -1, [inner, inner]); // [B, S, inner] x 2
  const gated = mul(geglu, hidden!, gelu(geglu, gate!), { name: 'Mul_gate' }); // [B, S, inner]
  return buildLinear(scope.child('net', 2), gated, inner, config.dim); // [B, S, C]
}
