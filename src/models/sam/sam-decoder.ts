/**
 * The per-prompt graph of SAM-HQ: prompt encoder -> MaskDecoderHQ -> output selection -> Sam.postprocess_masks.
 * Everything a prompt costs once the image embedding is known (the image encoder is vision-encoder.ts).
 *
 * Inputs: image_embeddings [1, C, g, g], interm_embeddings [1, g, g, V], point_coords [1, N, 2] (model frame, before
 * the +0.5 pixel-centre shift), point_labels [1, N] int32 (1, 0, -1 padding, 2 / 3 box corners), mask_input
 * [1, 1, 4g, 4g] + has_mask_input [1] bool, multimask_output [1] bool, hq_token_only [1] bool, input_size [2] int64
 * (the resized image inside the padded square, h, w), original_size [2] int64 (the image given to set_image, H, W).
 *
 * Selection, as MaskDecoderHQ.forward defines it: multimask_output picks the SAM token 1 + argmax(iou[1:M]) (one mask,
 * not M - 1), else token 0; the score is always that SAM token's IoU; hq_token_only returns the HQ logits, else the
 * SAM logits + the HQ logits. postprocess_masks: bilinear (align_corners=False) up to the padded square, crop to
 * input_size, bilinear to original_size; the caller thresholds at Sam.mask_threshold.
 */
import { GraphBuilder, Scope, type Value } from '../../onnx/graph-builder.js';
import { DEFAULT_TARGET, type BuildTarget } from '../../onnx/target.js';
import { add, argMax, concat, constInt64, gather, reshape, resizeBilinear, slice, where } from '../../onnx/ops.js';
import { WeightScope, type IgnoredWeight, type WeightSet } from '../../onnx/weight-scope.js';
import { ModelBuildError } from '../../errors.js';
import { buildMaskDecoderHQ } from './mask-decoder-hq.js';
import { buildDenseEmbeddings, buildDensePe, buildSparseEmbeddings } from './prompt-encoder.js';
import type { SamModelShapes } from './sam-configs.js';

/** Tensors of a SamHQModel checkpoint the decoder graph does not use (the image encoder graph does). */
export const SAM_DECODER_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [
  { pattern: /^vision_encoder\./, reason: 'image encoder: used by the encoder graph' },
  {
    pattern: /^prompt_encoder\.shared_embedding\.positional_embedding$/,
    reason: "transformers' tied alias of shared_image_embedding.positional_embedding (checked equal in shape when the weights are opened)",
  },
];

function checkShapes(shapes: SamModelShapes): void {
  const { prompt: p, decoder: d, vision: v } = shapes;
  const problems: string[] = [];
  if (p.hiddenSize !== d.hiddenSize) problems.push(`prompt_encoder_config.hidden_size ${p.hiddenSize} != mask_decoder_config.hidden_size ${d.hiddenSize}`);
  if (p.imageSize !== v.imageSize) problems.push(`prompt_encoder_config.image_size ${p.imageSize} != vision_config.image_size ${v.imageSize}`);
  if (p.imageEmbeddingSize * v.patchSize !== v.imageSize)
    problems.push(`prompt_encoder_config.image_embedding_size ${p.imageEmbeddingSize} != image_size / patch_size = ${v.imageSize / v.patchSize}`);
  if (v.outputChannels !== d.hiddenSize) problems.push(`vision_config.output_channels ${v.outputChannels} != mask_decoder_config.hidden_size ${d.hiddenSize}`);
  if (d.vitDim !== v.hiddenSize) problems.push(`mask_decoder_config.vit_dim ${d.vitDim} != vision_config.hidden_size ${v.hiddenSize}`);
  if (d.hiddenSize % 8 !== 0) problems.push(`mask_decoder_config.hidden_size ${d.hiddenSize} is not a multiple of 8`);
  if (p.maskInputChannels % 4 !== 0) problems.push(`prompt_encoder_config.mask_input_channels ${p.maskInputChannels} is not a multiple of 4`);
  if (d.numMultimaskOutputs < 1) problems.push(`mask_decoder_config.num_multimask_outputs ${d.numMultimaskOutputs} < 1`);
  if (problems.length > 0) throw new ModelBuildError(`SAM-HQ config: ${problems.join('; ')}`);
}

/**
 *   low [1, 1, 4g, 4g] ─ Resize (S, S) ─ Slice [:h, :w] ─ Resize (H, W) ─ upscaled_logits [1, 1, H, W]
 */
function buildPostprocess(g: GraphBuilder, low: Value, imageSize: number, sizes: { input: Value; original: Value }): Value {
  const s = new Scope(g, '/postprocess_masks');
  const padded = resizeBilinear(s, low, constInt64(g, [1, 1, imageSize, imageSize]), { name: 'Resize_padded' }); // [1, 1, S, S]
  const cropped = slice(s, padded, { starts: [0, 0], ends: sizes.input, axes: [2, 3] }, { name: 'Slice_input_size' }); // [1, 1, h, w]
  const target = concat(s, [constInt64(g, [1, 1]), sizes.original], 0, { name: 'Concat_sizes' }); // [4]
  return resizeBilinear(s, cropped, target, { name: 'Resize_original' }); // [1, 1, H, W]
}

export function buildSamDecoder(weights: WeightSet, shapes: SamModelShapes, target: BuildTarget = DEFAULT_TARGET): GraphBuilder {
  checkShapes(shapes);
  const { prompt, decoder, vision } = shapes;
  const g = new GraphBuilder('sam_decoder', undefined, target);
  g.setMetadata('model_type', 'sam_hq_prompt_decoder');
  const root = new WeightScope(g, '', weights, '');
  const c = decoder.hiddenSize;
  const grid = prompt.imageEmbeddingSize;
  const imageEmbeddings = g.input('image_embeddings', 'float32', [1, c, grid, grid]);
  const intermEmbeddings = g.input('interm_embeddings', 'float32', [1, grid, grid, vision.hiddenSize]);
  const coords = g.input('point_coords', 'float32', [1, 'points', 2]);
  const labels = g.input('point_labels', 'int32', [1, 'points']);
  const maskInput = g.input('mask_input', 'float32', [1, 1, 4 * grid, 4 * grid]);
  const hasMaskInput = g.input('has_mask_input', 'bool', [1]);
  const multimask = g.input('multimask_output', 'bool', [1]);
  const hqTokenOnly = g.input('hq_token_only', 'bool', [1]);
  const inputSize = g.input('input_size', 'int64', [2]);
  const originalSize = g.input('original_size', 'int64', [2]);

  const densePe = buildDensePe(root.child('shared_image_embedding'), prompt); // [1, C, g, g]
  const sparse = buildSparseEmbeddings(root, prompt, coords, labels); // [1, N, C]
  const dense = buildDenseEmbeddings(root, prompt, maskInput, hasMaskInput); // [1, C, g, g]
  const { masks, iou } = buildMaskDecoderHQ(root.child('mask_decoder'), decoder, { imageEmbeddings, intermEmbeddings, imagePe: densePe, sparse, dense, grid });

  // MaskDecoderHQ.forward's selection.
  const sel = new Scope(g, '/mask_decoder/select');
  const m = decoder.numMultimaskOutputs + 1;
  const multiIou = slice(sel, iou, { starts: [1], ends: [m], axes: [1] }, { name: 'Slice_multimask_iou' }); // [1, M-1]
  const best = add(sel, argMax(sel, multiIou, 1, true), constInt64(g, 1), { name: 'Add_token_offset' }); // [1, 1] int64
  const token = reshape(sel, where(sel, multimask, best, constInt64(g, [0], [1, 1]), { name: 'Where_multimask' }), [1], { name: 'Reshape_token' }); // [1]
  const score = gather(sel, iou, token, 1, { name: 'Gather_score' }); // [1, 1]
  const samMask = gather(sel, masks, token, 1, { name: 'Gather_sam_mask' }); // [1, 1, 4g, 4g]
  const hqMask = slice(sel, masks, { starts: [m], ends: [m + 1], axes: [1] }, { name: 'Slice_hq_mask' }); // [1, 1, 4g, 4g]
  const low = where(sel, hqTokenOnly, hqMask, add(sel, samMask, hqMask, { name: 'Add_sam_hq' }), { name: 'Where_hq_token_only' }); // [1, 1, 4g, 4g]
  const upscaled = buildPostprocess(g, low, vision.imageSize, { input: inputSize, original: originalSize });

  g.output(densePe, 'dense_pe', 'float32', [1, c, grid, grid]);
  g.output(sparse, 'sparse_embeddings', 'float32', [1, 'points', c]);
  g.output(dense, 'dense_embeddings', 'float32', [1, c, grid, grid]);
  g.output(masks, 'decoder_masks_all', 'float32', [1, m + 1, 4 * grid, 4 * grid]);
  g.output(iou, 'decoder_iou_all', 'float32', [1, m]);
  g.output(low, 'low_res_logits', 'float32', [1, 1, 4 * grid, 4 * grid]);
  g.output(score, 'iou_predictions', 'float32', [1, 1]);
  g.output(upscaled, 'upscaled_logits', 'float32', [1, 1, 'height', 'width']);
  weights.assertAllUsed(SAM_DECODER_IGNORED_WEIGHTS);
  return g;
}
