/**
 * HF transformers' CLIPTextModel as one ONNX graph: `input_ids` int64 [B, T] -> `last_hidden_state` float32 [B, T, C].
 *
 * Mirrors `CLIPTextEmbeddings`, `CLIPEncoder`, `_make_causal_mask` and `CLIPTextTransformer.forward` (up to the
 * final layer norm; no pooling, no projection) of
 * https://github.com/huggingface/transformers/blob/v4.30.2/src/transformers/models/clip/modeling_clip.py
 * SD-2's text encoder (OpenCLIP ViT-H) needs nothing special: diffusers ships it with a 23-layer config, which
 * makes the last layer the penultimate one of OpenCLIP, and with hidden_act 'gelu'.
 *
 * T is dynamic and must be <= max_position_embeddings (positions past the table make Gather fail at run time).
 */
import { ModelBuildError } from '../../errors.js';
import { GraphBuilder, type Value } from '../../onnx/graph-builder.js';
import { DEFAULT_TARGET, type BuildTarget } from '../../onnx/target.js';
import { add, constFloat, constInt64, gather, greater, squeeze, unsqueeze, where } from '../../onnx/ops.js';
import { WeightScope, type IgnoredWeight, type WeightSet } from '../../onnx/weight-scope.js';
import type { ClipTextConfig } from '../../config/clip-config.js';
import { buildLayerNorm } from '../nn/norm.js';
import { buildClipEncoderLayer } from './clip-encoder-layer.js';

/** Tensors of a text_encoder checkpoint that the graph deliberately does not use. */
export const CLIP_TEXT_MODEL_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [
  {
    pattern: /^text_model\.embeddings\.position_ids$/,
    reason: 'int64 buffer arange(max_position_embeddings) saved by transformers < 4.31; the graph makes positions with Range',
  },
];

/** float32's lowest value, what transformers' `_make_causal_mask` fills the masked scores with (torch.finfo.min). */
const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * Build the graph and check the weights in both directions (every tensor used or in CLIP_TEXT_MODEL_IGNORED_WEIGHTS).
 *
 *   input_ids ─► token_embedding ─┐
 *   positions ─► position_embedding ┴► (+) ─► layers.0 .. layers.{N-1} (causal mask) ─► final_layer_norm ─► last_hidden_state
 */
export function buildClipTextModel(weights: WeightSet, config: ClipTextConfig, target: BuildTarget = DEFAULT_TARGET): GraphBuilder {
  if (config.headDim * config.numAttentionHeads !== config.hiddenSize) {
    throw new ModelBuildError(
      `CLIP text model: hidden_size ${config.hiddenSize} is not num_attention_heads ${config.numAttentionHeads} x head_dim ${config.headDim}`,
    );
  }
  const g = new GraphBuilder('clip_text_model', undefined, target);
  g.setMetadata('model_type', 'clip_text_model');
  g.setMetadata('hidden_act', config.hiddenAct);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']); // [B, T]
  const scope = new WeightScope(g, '', weights, '').child('text_model');

  const positions = buildPositions(scope.sub('positions'), inputIds); // [T]
  let hidden = buildClipTextEmbeddings(scope.child('embeddings'), config, inputIds, positions); // [B, T, C]
  const causalMask = buildCausalMask(scope.sub('causal_mask'), positions); // [T, T]
  const encoder = scope.child('encoder');
  for (let i = 0; i < config.numHiddenLayers; i++) {
    hidden = buildClipEncoderLayer(encoder.child('layers', i), config, hidden, causalMask); // [B, T, C]
  }
  const last = buildLayerNorm(scope.child('final_layer_norm'), hidden, { channels: config.hiddenSize, eps: config.layerNormEps }); // [B, T, C]
  g.output(last, 'last_hidden_state', 'float32', ['batch', 'sequence', config.hiddenSize]);

  weights.assertAllUsed(CLIP_TEXT_MODEL_IGNORED_WEIGHTS);
  return g;
}

/** CLIPTextEmbeddings: token_embedding(input_ids) + position_embedding(positions). */
export function buildClipTextEmbeddings(scope: WeightScope, config: ClipTextConfig, inputIds: Value, positions: Value): Value {
  const tokenTable = scope.weight('token_embedding.weight', [config.vocabSize, config.hiddenSize]); // [V, C]
  const positionTable = scope.weight('position_embedding.weight', [config.maxPositionEmbeddings, config.hiddenSize]); // [P, C]
  const tokens = gather(scope, tokenTable, inputIds, 0, { name: 'token_embedding/Gather' }); // [B, T, C]
  const positionEmbeds = gather(scope, positionTable, positions, 0, { name: 'position_embedding/Gather' }); // [T, C]
  return add(scope, tokens, positionEmbeds); // [B, T, C]
}

/** positions = arange(T), T read from input_ids (transformers slices its position_ids buffer by T). */
function buildPositions(scope: WeightScope, inputIds: Value): Value {
  const g = scope.g;
  const seqLen = scope.op('Shape', [inputIds], { start: 1, end: 2 }); // [1]
  const limit = squeeze(scope, seqLen, [0]); // []
  return scope.op('Range', [constInt64(g, 0), limit, constInt64(g, 1)]); // [T]
}

/** Additive causal mask [T, T]: 0 where key j <= query i, float32 min where j > i (torch.finfo.min, as transformers). */
function buildCausalMask(scope: WeightScope, positions: Value): Value {
  const g = scope.g;
  const rows = unsqueeze(scope, positions, [1], { name: 'Unsqueeze_rows' }); // [T, 1]
  const cols = unsqueeze(scope, positions, [0], { name: 'Unsqueeze_cols' }); // [1, T]
  const future = greater(scope, cols, rows); // [T, T] bool
  return where(scope, future, constFloat(g, FLOAT32_MIN), constFloat(g, 0)); // [T, T]
}
