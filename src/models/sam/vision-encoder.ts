/**
 * SAM-HQ's image encoder (`ImageEncoderViT`, image_encoder.py) as one ONNX graph:
 *
 *   pixel_values [B, 3, S, S] (normalised, zero-padded) -> image_embeddings [B, out, g, g], interm_embeddings [B, g, g, C]
 *
 * `interm_embeddings` is the output of the FIRST global-attention block (after its MLP residual), the only element of
 * the official `interm_embeddings` list that MaskDecoderHQ uses. Weights: transformers' `vision_encoder.*` names.
 */
import { ModelBuildError } from '../../errors.js';
import { GraphBuilder } from '../../onnx/graph-builder.js';
import { DEFAULT_TARGET, type BuildTarget } from '../../onnx/target.js';
import { add, transpose } from '../../onnx/ops.js';
import { WeightScope, type IgnoredWeight, type WeightSet } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildLayerNorm2d } from './layers.js';
import { LAYER_NORM_2D_EPS, type SamVisionConfig } from './sam-configs.js';
import { buildVisionLayer } from './vision-layer.js';

/** Tensors of a SamHQModel checkpoint the image encoder graph does not use (the prompt/decoder graph does). */
export const SAM_VISION_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [
  { pattern: /^(prompt_encoder|mask_decoder|shared_image_embedding)\./, reason: 'prompt encoder and mask decoder: used by the decoder graph' },
];

export function samGridSize(config: SamVisionConfig): number {
  return config.imageSize / config.patchSize;
}

function checkVisionConfig(c: SamVisionConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(c.imageSize / c.patchSize)) problems.push(`image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
  if (c.hiddenSize % c.numAttentionHeads !== 0) problems.push(`hidden_size ${c.hiddenSize} is not a multiple of num_attention_heads ${c.numAttentionHeads}`);
  if (c.globalAttnIndexes.length === 0) problems.push('global_attn_indexes is empty (the HQ decoder needs the first global block)');
  for (const i of c.globalAttnIndexes) {
    if (!Number.isInteger(i) || i < 0 || i >= c.numHiddenLayers) problems.push(`global_attn_indexes entry ${i} is not a block of 0..${c.numHiddenLayers - 1}`);
  }
  if (problems.length > 0) throw new ModelBuildError(`SAM vision config: ${problems.join('; ')}`);
}

/**
 *   pixel_values ─ patch_embed.projection (conv k=s=patch) ─ NHWC ─ (+ pos_embed) ─ layers.0 .. layers.{N-1} ─┬─ NCHW ─ neck ─ image_embeddings
 *                                                              first global layer's output ─ interm_embeddings ┘
 *   neck: conv1 (1x1, no bias) ─ layer_norm1 (LayerNorm2d) ─ conv2 (3x3, pad 1, no bias) ─ layer_norm2
 */
export function buildSamVisionEncoder(weights: WeightSet, config: SamVisionConfig, target: BuildTarget = DEFAULT_TARGET): GraphBuilder {
  checkVisionConfig(config);
  const g = new GraphBuilder('sam_vision_encoder', undefined, target);
  g.setMetadata('model_type', 'sam_hq_vision_encoder');
  const scope = new WeightScope(g, '', weights, '').child('vision_encoder');
  const { hiddenSize: dim, imageSize: size, patchSize: patch } = config;
  const grid = samGridSize(config);
  const pixels = g.input('pixel_values', 'float32', ['batch', config.numChannels, size, size]); // [B, 3, S, S]
  const patches = buildConv2d(scope.child('patch_embed', 'projection'), pixels, {
    inChannels: config.numChannels,
    outChannels: dim,
    kernel: patch,
    stride: patch,
  }); // [B, C, g, g]
  let x = transpose(scope, patches, [0, 2, 3, 1], { name: 'Transpose_patches' }); // [B, g, g, C]
  if (config.useAbsPos) x = add(scope, x, scope.weight('pos_embed', [1, grid, grid, dim]), { name: 'Add_pos_embed' }); // [B, g, g, C]
  const firstGlobal = Math.min(...config.globalAttnIndexes);
  let interm: typeof x | undefined;
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const windowSize = config.globalAttnIndexes.includes(i) ? 0 : config.windowSize;
    x = buildVisionLayer(scope.child('layers', i), x, { vision: config, windowSize, grid }); // [B, g, g, C]
    if (i === firstGlobal) interm = x;
  }
  const neck = scope.child('neck');
  const out = config.outputChannels;
  let y = transpose(neck, x, [0, 3, 1, 2], { name: 'Transpose_nchw' }); // [B, C, g, g]
  y = buildConv2d(neck.child('conv1'), y, { inChannels: dim, outChannels: out, kernel: 1, bias: false }); // [B, out, g, g]
  y = buildLayerNorm2d(neck.child('layer_norm1'), y, { channels: out, eps: LAYER_NORM_2D_EPS });
  y = buildConv2d(neck.child('conv2'), y, { inChannels: out, outChannels: out, kernel: 3, padding: 1, bias: false }); // [B, out, g, g]
  y = buildLayerNorm2d(neck.child('layer_norm2'), y, { channels: out, eps: LAYER_NORM_2D_EPS });
  g.output(y, 'image_embeddings', 'float32', ['batch', out, grid, grid]);
  g.output(interm!, 'interm_embeddings', 'float32', ['batch', grid, grid, dim]);
  weights.assertAllUsed(SAM_VISION_IGNORED_WEIGHTS);
  return g;
}
