/**
 * SAM's PromptEncoder (prompt_encoder.py) and its random-Fourier PositionEmbeddingRandom (transformers'
 * `shared_image_embedding.positional_embedding` = the official `pe_layer.positional_encoding_gaussian_matrix` [2, C/2]).
 *
 * Sparse prompts come as one list of model-frame coordinates [1, N, 2] with labels [1, N] (int32): 1 positive point,
 * 0 negative point, -1 padding point, 2 / 3 the box's top-left / bottom-right corner (the caller lays them out as the
 * official forward does: points, then the padding point when there is no box, then the two corners). Each gets
 * PE((coord + 0.5) / image_size) (zeroed for -1) plus its learned embedding, the same additions the official code makes.
 */
import { add, concat, constFloat, constInt64, cos, div, equal, gather, matMul, mul, reshape, sin, sub, transpose, unsqueeze, where } from '../../onnx/ops.js';
import { gelu } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildLayerNorm2d } from './layers.js';
import { LAYER_NORM_2D_EPS, type SamPromptEncoderConfig } from './sam-configs.js';

/** float32 2 pi, as torch multiplies a float32 tensor by the Python float 2 * np.pi. */
const TWO_PI = 2 * Math.PI;

/**
 * PositionEmbeddingRandom._pe_encoding on coordinates in [0, 1]: [..., 2] -> [..., C] = [sin | cos](2 pi (2c - 1) @ G).
 * `scope` is at `shared_image_embedding`.
 */
export function buildPeEncoding(scope: WeightScope, coords: Value, numPosFeats: number): Value {
  const g = scope.g;
  const gaussian = scope.weight('positional_embedding', [2, numPosFeats]); // [2, C/2]
  const centred = sub(scope, mul(scope, coords, constFloat(g, 2), { name: 'Mul_2' }), constFloat(g, 1), { name: 'Sub_1' }); // [..., 2]
  const projected = mul(scope, matMul(scope, centred, gaussian, { name: 'MatMul_gaussian' }), constFloat(g, TWO_PI), { name: 'Mul_2pi' }); // [..., C/2]
  return concat(scope, [sin(scope, projected), cos(scope, projected)], -1, { name: 'Concat_sin_cos' }); // [..., C]
}

/** get_dense_pe(): the PE of the embedding grid's cell centres, [1, C, g, g]. */
export function buildDensePe(scope: WeightScope, config: SamPromptEncoderConfig): Value {
  const side = config.imageEmbeddingSize;
  // (x, y) = ((j + 0.5) / w, (i + 0.5) / h) in float32, as grid.cumsum - 0.5 divided by the size.
  const cells = new Float32Array(side * side * 2);
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      cells[(i * side + j) * 2] = Math.fround((j + 0.5) / side);
      cells[(i * side + j) * 2 + 1] = Math.fround((i + 0.5) / side);
    }
  }
  const grid = scope.g.constant({ dtype: 'float32', dims: [side, side, 2], data: cells }); // [g, g, 2]
  const pe = buildPeEncoding(scope.sub('dense_pe'), grid, config.hiddenSize / 2); // [g, g, C]
  return unsqueeze(scope, transpose(scope, pe, [2, 0, 1], { name: 'Transpose_dense_pe' }), [0], { name: 'Unsqueeze_dense_pe' }); // [1, C, g, g]
}

/**
 *   coords [1, N, 2] ─ + 0.5 ─ / [W, H] ─ PE ─ Where(label == -1, 0, ·) ─┐
 *   labels [1, N] ─ + 1 ─ Gather([not_a_point, point_embed.0 .. 3]) ────┴─ + ─ sparse_embeddings [1, N, C]
 * `scope` is the root; prompt_encoder.* and shared_image_embedding.* are taken below it.
 */
export function buildSparseEmbeddings(root: WeightScope, config: SamPromptEncoderConfig, coords: Value, labels: Value): Value {
  const scope = root.child('prompt_encoder');
  const g = scope.g;
  const c = config.hiddenSize;
  const shifted = add(scope, coords, constFloat(g, 0.5), { name: 'Add_pixel_centre' }); // [1, N, 2]
  const normalised = div(scope, shifted, constFloat(g, [config.imageSize, config.imageSize]), { name: 'Div_image_size' }); // [1, N, 2]
  const pe = buildPeEncoding(root.child('shared_image_embedding'), normalised, c / 2); // [1, N, C]
  const isPad = unsqueeze(scope, equal(scope, labels, g.constant({ dtype: 'int32', dims: [], data: Int32Array.of(-1) })), [2], { name: 'Unsqueeze_pad' }); // [1, N, 1]
  const zeroed = where(scope, isPad, constFloat(g, 0), pe, { name: 'Where_pad' }); // [1, N, C]
  const table = concat(
    scope,
    [scope.weight('not_a_point_embed.weight', [1, c]), ...[0, 1, 2, 3].map((i) => scope.weight(`point_embed.${i}.weight`, [1, c]))],
    0,
    { name: 'Concat_point_embeddings' },
  ); // [5, C]: label -1, 0, 1, 2, 3
  const index = add(scope, labels, g.constant({ dtype: 'int32', dims: [], data: Int32Array.of(1) }), { name: 'Add_label_offset' }); // [1, N]
  const learned = gather(scope, table, index, 0, { name: 'Gather_point_embeddings' }); // [1, N, C]
  return add(scope, zeroed, learned, { name: 'Add_point_embeddings' }); // [1, N, C]
}

/**
 *   mask_input [1, 1, 4g, 4g] ─ conv1 (2x2/2) ─ layer_norm1 ─ GELU ─ conv2 (2x2/2) ─ layer_norm2 ─ GELU ─ conv3 (1x1) ─┐
 *   no_mask_embed [1, C] ─ [1, C, 1, 1] ─ Expand [1, C, g, g] ───────────────────────────── Where(has_mask_input) ─┴─ dense
 */
export function buildDenseEmbeddings(root: WeightScope, config: SamPromptEncoderConfig, maskInput: Value, hasMaskInput: Value): Value {
  const scope = root.child('prompt_encoder');
  const g = scope.g;
  const { hiddenSize: c, maskInputChannels: mic, imageEmbeddingSize: side } = config;
  const embed = scope.child('mask_embed');
  let m = buildConv2d(embed.child('conv1'), maskInput, { inChannels: 1, outChannels: mic / 4, kernel: 2, stride: 2 }); // [1, mic/4, 2g, 2g]
  m = gelu(embed.sub('act1'), buildLayerNorm2d(embed.child('layer_norm1'), m, { channels: mic / 4, eps: LAYER_NORM_2D_EPS }));
  m = buildConv2d(embed.child('conv2'), m, { inChannels: mic / 4, outChannels: mic, kernel: 2, stride: 2 }); // [1, mic, g, g]
  m = gelu(embed.sub('act2'), buildLayerNorm2d(embed.child('layer_norm2'), m, { channels: mic, eps: LAYER_NORM_2D_EPS }));
  m = buildConv2d(embed.child('conv3'), m, { inChannels: mic, outChannels: c, kernel: 1 }); // [1, C, g, g]
  const noMask = reshape(scope, scope.weight('no_mask_embed.weight', [1, c]), [1, c, 1, 1], { name: 'Reshape_no_mask' }); // [1, C, 1, 1]
  const broadcast = scope.op('Expand', [noMask, constInt64(g, [1, c, side, side])], {}, { name: 'Expand_no_mask' }); // [1, C, g, g]
  return where(scope, hasMaskInput, m, broadcast, { name: 'Where_has_mask' }); // [1, C, g, g]
}
