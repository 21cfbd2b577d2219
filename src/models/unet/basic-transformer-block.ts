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
import { buildFeedForward } from './feed-forward.js';
import { asAttn1Edit, type Attn1Edit, type Attn1HookPoint } from './hook.js';

export interface BasicTransformerBlockConfig {
  readonly dim: number;
  readonly heads: number;
  readonly crossAttentionDim: number;
}

export interface TransformerBlockInputs {
  readonly encoderHiddenStates: Value;
  /** Token map size, int64 [1] each (for the attn1 hook). */
  readonly height: Value;
  readonly width: Value;
  readonly hook?: Attn1HookPoint | undefined;
}

const LAYER_NORM_EPS = 1e-5;

/**
 *   h ─ norm1 ─(hook)─ attn1 ─ + ─ norm2 ─ attn2(ctx) ─ + ─ norm3 ─ ff ─ +
 *   └─────────────────────────┘└──────────────────────┘└──────────────┘
 */
export function buildBasicTransformerBlock(scope: WeightScope, config: BasicTransformerBlockConfig, x: Value, inputs: TransformerBlockInputs): Value {
  const { dim, heads } = config;
  const point = inputs.hook;
  const transformInput = point === undefined ? undefined : (attnScope: WeightScope, hidden: Value): Attn1Edit => asAttn1Edit(point.hook(attnScope, {
    modulePath: attnScope.prefix.slice(0, -1),
    upBlockIndex: point.upBlockIndex,
    channels: dim,
    heads,
    height: inputs.height,
    width: inputs.width,
  }, hidden));

  let n = buildLayerNorm(scope.child('norm1'), x, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  const a1 = buildAttention(scope.child('attn1'), { queryDim: dim, crossAttentionDim: null, heads }, n, { transformInput }); // [B, HW, C]
  let h = add(scope, a1, x, { name: 'Add_attn1' }); // [B, HW, C]
  n = buildLayerNorm(scope.child('norm2'), h, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  const a2 = buildAttention(scope.child('attn2'), { queryDim: dim, crossAttentionDim: config.crossAttentionDim, heads }, n,
    { context: inputs.encoderHiddenStates }); // [B, HW, C]
  h = add(scope, a2, h, { name: 'Add_attn2' }); // [B, HW, C]
  n = buildLayerNorm(scope.child('norm3'), h, { channels: dim, eps: LAYER_NORM_EPS }); // [B, HW, C]
  const ff = buildFeedForward(scope.child('ff'), { dim, mult: 4 }, n); // [B, HW, C]
  return add(scope, ff, h, { name: 'Add_ff' }); // [B, HW, C]
}
