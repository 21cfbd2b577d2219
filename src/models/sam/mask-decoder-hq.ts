/**
 * MaskDecoderHQ.predict_masks (mask_decoder_hq.py) below `mask_decoder.`: the logits of ALL output tokens and the IoU
 * head's scores; the selection (multimask_output / hq_token_only) is MaskDecoderHQ.forward, built in sam-decoder.ts.
 *
 * Tokens: [iou_token, mask_tokens 0..M-1, hq_token, sparse prompts]. Masks of SAM tokens 0..M-1 come from
 * output_hypernetworks_mlps[i](token) . upscaled SAM embedding; the HQ mask from hq_mask_mlp(token) .
 * (embedding_maskfeature(upscaled SAM embedding) + hq_features), hq_features = embedding_encoder(image_embeddings) +
 * compress_vit_feat(interm_embeddings as NCHW). The IoU head has M outputs: there is no score for the HQ token.
 */
import { add, concat, gelu, matMul, reshape, slice, squeeze, transpose, unsqueeze } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildConvTranspose2d, buildLayerNorm2d, buildSamMlp } from './layers.js';
import { LAYER_NORM_2D_EPS, type SamMaskDecoderConfig } from './sam-configs.js';
import { buildTwoWayTransformer } from './two-way-transformer.js';

export interface MaskDecoderInputs {
  /** [1, C, g, g] */
  readonly imageEmbeddings: Value;
  /** [1, g, g, vit_dim] (BHWC, as the encoder returns it) */
  readonly intermEmbeddings: Value;
  /** get_dense_pe() [1, C, g, g] */
  readonly imagePe: Value;
  /** [1, N, C] */
  readonly sparse: Value;
  /** [1, C, g, g] */
  readonly dense: Value;
  /** g: the embedding grid side (static). */
  readonly grid: number;
}

/** ConvTranspose (2x2/2) ─ LayerNorm2d ─ GELU ─ ConvTranspose (2x2/2) [─ GELU]: output_upscaling, embedding_encoder, compress_vit_feat. */
function buildUpscale(
  scope: WeightScope,
  x: Value,
  names: { conv1: string; norm: string; conv2: string },
  dims: { inChannels: number; mid: number; out: number; finalGelu: boolean },
): Value {
  let h = buildConvTranspose2d(scope.child(names.conv1), x, { inChannels: dims.inChannels, outChannels: dims.mid, kernel: 2 }); // [1, mid, 2h, 2w]
  h = gelu(scope.sub(`${names.norm}_act`), buildLayerNorm2d(scope.child(names.norm), h, { channels: dims.mid, eps: LAYER_NORM_2D_EPS }));
  h = buildConvTranspose2d(scope.child(names.conv2), h, { inChannels: dims.mid, outChannels: dims.out, kernel: 2 }); // [1, out, 4h, 4w]
  return dims.finalGelu ? gelu(scope.sub(`${names.conv2}_act`), h) : h;
}

/** masks_all [1, M + 1, 4g, 4g] (0 = single-mask token, 1..M-1 multimask, M = HQ), iou_all [1, M]. */
export function buildMaskDecoderHQ(scope: WeightScope, config: SamMaskDecoderConfig, inputs: MaskDecoderInputs): { masks: Value; iou: Value } {
  const c = config.hiddenSize;
  const numMaskTokens = config.numMultimaskOutputs + 1; // SAM tokens (the IoU head's outputs)
  const c8 = c / 8;
  const output = concat(
    scope,
    [scope.weight('iou_token.weight', [1, c]), scope.weight('mask_tokens.weight', [numMaskTokens, c]), scope.weight('hq_token.weight', [1, c])],
    0,
    { name: 'Concat_output_tokens' },
  ); // [M + 2, C]
  const tokens = concat(scope, [unsqueeze(scope, output, [0], { name: 'Unsqueeze_tokens' }), inputs.sparse], 1, { name: 'Concat_tokens' }); // [1, M+2+N, C]
  const src = add(scope, inputs.imageEmbeddings, inputs.dense, { name: 'Add_dense' }); // [1, C, g, g]
  const { queries: hs, keys } = buildTwoWayTransformer(scope.child('transformer'), config, { image: src, imagePe: inputs.imagePe, tokens });
  const iouTokenOut = squeeze(scope, slice(scope, hs, { starts: [0], ends: [1], axes: [1] }, { name: 'Slice_iou_token' }), [1], { name: 'Squeeze_iou_token' }); // [1, C]
  const maskTokensOut = slice(scope, hs, { starts: [1], ends: [2 + numMaskTokens], axes: [1] }, { name: 'Slice_mask_tokens' }); // [1, M+1, C]

  const side = reshape(scope, transpose(scope, keys, [0, 2, 1], { name: 'Transpose_src' }), [0, c, inputs.grid, inputs.grid], { name: 'Reshape_src' }); // [1, C, g, g]
  const upSam = buildUpscale(
    scope,
    side,
    { conv1: 'upscale_conv1', norm: 'upscale_layer_norm', conv2: 'upscale_conv2' },
    { inChannels: c, mid: c / 4, out: c8, finalGelu: true },
  ); // [1, C/8, 4g, 4g]
  const encoded = buildUpscale(
    scope,
    inputs.imageEmbeddings,
    { conv1: 'encoder_conv1', norm: 'encoder_norm', conv2: 'encoder_conv2' },
    { inChannels: c, mid: c / 4, out: c8, finalGelu: false },
  );
  const vit = transpose(scope, inputs.intermEmbeddings, [0, 3, 1, 2], { name: 'Transpose_vit_features' }); // [1, vit, g, g]
  const compressed = buildUpscale(
    scope,
    vit,
    { conv1: 'compress_vit_conv1', norm: 'compress_vit_norm', conv2: 'compress_vit_conv2' },
    { inChannels: config.vitDim, mid: c, out: c8, finalGelu: false },
  );
  const hqFeatures = add(scope, encoded, compressed, { name: 'Add_hq_features' }); // [1, C/8, 4g, 4g]
  let feature = buildConv2d(scope.child('mask_conv1'), upSam, { inChannels: c8, outChannels: c / 4, kernel: 3, padding: 1 }); // [1, C/4, 4g, 4g]
  feature = gelu(scope.sub('mask_norm_act'), buildLayerNorm2d(scope.child('mask_norm'), feature, { channels: c / 4, eps: LAYER_NORM_2D_EPS }));
  feature = buildConv2d(scope.child('mask_conv2'), feature, { inChannels: c / 4, outChannels: c8, kernel: 3, padding: 1 }); // [1, C/8, 4g, 4g]
  const upHq = add(scope, feature, hqFeatures, { name: 'Add_upscaled_hq' }); // [1, C/8, 4g, 4g]

  const mlp = { inputDim: c, hiddenDim: c, outputDim: c8, numLayers: 3 };
  const hyper: Value[] = [];
  for (let i = 0; i <= numMaskTokens; i++) {
    const token = slice(scope, maskTokensOut, { starts: [i], ends: [i + 1], axes: [1] }, { name: `Slice_mask_token_${i}` }); // [1, 1, C]
    const mlpScope = i < numMaskTokens ? scope.child('output_hypernetworks_mlps', i) : scope.child('hq_mask_mlp');
    hyper.push(buildSamMlp(mlpScope, token, mlp)); // [1, 1, C/8]
  }
  const flat = (x: Value, name: string): Value => reshape(scope, x, [0, c8, -1], { name: `Reshape_${name}` }); // [1, C/8, 16 g^2]
  const hyperSam = concat(scope, hyper.slice(0, numMaskTokens), 1, { name: 'Concat_hyper_sam' }); // [1, M, C/8]
  const masksSam = matMul(scope, hyperSam, flat(upSam, 'upscaled_sam'), { name: 'MatMul_masks_sam' }); // [1, M, 16 g^2]
  const masksHq = matMul(scope, hyper[numMaskTokens]!, flat(upHq, 'upscaled_hq'), { name: 'MatMul_masks_hq' }); // [1, 1, 16 g^2]
  const all = concat(scope, [masksSam, masksHq], 1, { name: 'Concat_masks' }); // [1, M+1, 16 g^2]
  const masks = reshape(scope, all, [0, numMaskTokens + 1, 4 * inputs.grid, 4 * inputs.grid], { name: 'Reshape_masks' }); // [1, M+1, 4g, 4g]
  const iou = buildSamMlp(scope.child('iou_prediction_head'), iouTokenOut, {
    inputDim: c,
    hiddenDim: config.iouHeadHiddenDim,
    outputDim: numMaskTokens,
    numLayers: config.iouHeadDepth,
  }); // [1, M]
  return { masks, iou };
}
