/**
 * BasicTransformerBlock: norm1 -> attn1 (self) -> +, norm2 -> attn2 (cross) -> +, norm3 -> ff -> +.
 * Mirrors diffusers v0.19.3 `BasicTransformerBlock` (layer_norm, only_cross_attention false, geglu):
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/attention.py
 */
import { add } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildLayerNorm } from '../nn/norm.js';
import { buildAttention } from './attention.js';
import type { AttentionHostPoint } from './attention-processor.js';
import { buildFeedForward } from './feed-forward.js';

export interface BasicTransformerBlockConfig {
  readonly dim: number;
  readonly heads: number;
  readonly crossAttentionDim: number;
}

export interface TransformerBlockInputs {
  readonly encoderHiddenStates: Value;
  /** Token map size, int64 [1] each (for attention processors). */
  readonly height: Value;
  readonly width: Value;
  readonly attention: AttentionHostPoint;
}

const LAYER_NORM_EPS = 1e-5;
/** The transfer's UNet batch ([out, style, struct] x CFG halves): the largest batch attention chunking plans for. */
const EXPECTED_BATCH = 6;
/** CLIP's 77 text tokens: the keys of a cross-attention. */
const EXPECTED_CONTEXT_TOKENS = 77;

/**
 *   h ─ norm1 ─ attn1 ─ + ─ norm2 ─ attn2(ctx) ─ + ─ norm3 ─ ff ─ +
 *   └─────────────────┘└──────────────────────┘└──────────────┘
 */
export function buildBasicTransformerBlock(scope: WeightScope, config: BasicTransformerBlockConfig, x: Value, inputs: TransformerBlockInputs): Value {
  const { dim, heads } = config;
  const { host, location, expectedTokens } = inputs.attention;
  const tokenMap = { height: inputs.height, width: inputs.width };
  const attention = (name: 'attn1' | 'attn2', hidden: Value): Value => {
    const s = scope.child(name);
    const isSelf = name === 'attn1';
    const processor = host.enter({
      modulePath: s.prefix.slice(0, -1),
      kind: isSelf ? 'self' : 'cross',
      ...location,
      channels: dim,
      heads,
    });
    return buildAttention(s, { queryDim: dim, crossAttentionDim: isSelf ? null : config.crossAttentionDim, heads }, hidden, {
      context: isSelf ? undefined : inputs.encoderHiddenStates,
      processor,
      tokenMap,
      expected: { batch: EXPECTED_BATCH, queries: expectedTokens, keys: isSelf ? expectedTokens : EXPECTED_CONTEXT_TOKENS },
    }); // [B, HW, C]
  };

  let n = buildLayerNorm(scope.child('norm1'), x, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  let h = add(scope, attention('attn1', n), x, { name: 'Add_attn1' }); // [B, HW, C]
  n = buildLayerNorm(scope.child('norm2'), h, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  h = add(scope, attention('attn2', n), h, { name: 'Add_attn2' }); // [B, HW, C]
  n = buildLayerNorm(scope.child('norm3'), h, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  const ff = buildFeedForward(scope.child('ff'), { dim, mult: 4 }, n); // [B, HW, C]
  return add(scope, ff, h, { name: 'Add_ff' }); // [B, HW, C]
}
