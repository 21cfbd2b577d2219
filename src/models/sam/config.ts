/**
 * SamHQConfig: transformers' `SamHQConfig` config.json (model_type "sam_hq", with `vision_config`,
 * `prompt_encoder_config`, `mask_decoder_config`), parsed once into a frozen object with transformers' defaults
 * for absent keys (configuration_sam_hq.py: the defaults are ViT-B), the official variants ViT-B/L/H of
 * SysCV/sam-hq's build_sam.py, and the table of every weight's shape (Hugging Face names) a config implies, so a
 * config that does not fit its weights fails naming the tensor before any graph is built.
 */
import { ConfigError, WeightMissingError, WeightShapeError, WeightUnusedError } from '../../errors.js';
import { ConfigReader, deepFreeze, isNonNegativeInt, showValue } from '../../config/config-reader.js';
import { formatDims, sameDims } from '../../tensor/tensor.js';

export interface SamHQVisionConfig {
  readonly hiddenSize: number;
  readonly outputChannels: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numChannels: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly layerNormEps: number;
  readonly qkvBias: boolean;
  readonly mlpRatio: number;
  /** `mlp_dim`, or int(hidden_size * mlp_ratio) when absent/null (as transformers resolves it). */
  readonly mlpDim: number;
  readonly useAbsPos: boolean;
  readonly useRelPos: boolean;
  readonly windowSize: number;
  /** Blocks with global attention; all others attend within windowSize x windowSize windows. */
  readonly globalAttnIndexes: readonly number[];
  /** Columns of the random PE matrix (`shared_image_embedding.positional_embedding` [2, numPosFeats]). */
  readonly numPosFeats: number;
}

export interface SamHQPromptEncoderConfig {
  readonly hiddenSize: number;
  readonly imageSize: number;
  readonly patchSize: number;
  /** image_size // patch_size: the side of the embedding grid. */
  readonly imageEmbeddingSize: number;
  readonly maskInputChannels: number;
  readonly numPointEmbeddings: number;
  readonly layerNormEps: number;
}

export interface SamHQMaskDecoderConfig {
  readonly hiddenSize: number;
  readonly mlpDim: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly attentionDownsampleRate: number;
  readonly numMultimaskOutputs: number;
  readonly iouHeadDepth: number;
  readonly iouHeadHiddenDim: number;
  /** The config's value; note the official TwoWayTransformer's nn.LayerNorms use torch's default 1e-5. */
  readonly layerNormEps: number;
  /** Channels of the ViT's intermediate embedding fed to compress_vit_feat (= vision hiddenSize). */
  readonly vitDim: number;
}

export interface SamHQConfig {
  readonly vision: SamHQVisionConfig;
  readonly promptEncoder: SamHQPromptEncoderConfig;
  readonly maskDecoder: SamHQMaskDecoderConfig;
}

function section(json: unknown, path: string, key: string): ConfigReader {
  const value = ConfigReader.from(json, path).raw(key);
  if (value === undefined || value === null) return ConfigReader.from({}, `${path} ${key}`);
  return ConfigReader.from(value, `${path} ${key}`);
}

function parseVision(r: ConfigReader): SamHQVisionConfig {
  r.choice('hidden_act', ['gelu'], 'gelu');
  const hiddenSize = r.positiveInt('hidden_size', 768);
  const mlpRatio = r.positiveNumber('mlp_ratio', 4.0);
  const mlpDim = r.raw('mlp_dim') === null ? Math.trunc(hiddenSize * mlpRatio) : r.positiveInt('mlp_dim', Math.trunc(hiddenSize * mlpRatio));
  return {
    hiddenSize,
    outputChannels: r.positiveInt('output_channels', 256),
    numHiddenLayers: r.positiveInt('num_hidden_layers', 12),
    numAttentionHeads: r.positiveInt('num_attention_heads', 12),
    numChannels: r.positiveInt('num_channels', 3),
    imageSize: r.positiveInt('image_size', 1024),
    patchSize: r.positiveInt('patch_size', 16),
    layerNormEps: r.positiveNumber('layer_norm_eps', 1e-6),
    qkvBias: r.boolean('qkv_bias', true),
    mlpRatio,
    mlpDim,
    useAbsPos: r.boolean('use_abs_pos', true),
    useRelPos: r.boolean('use_rel_pos', true),
    windowSize: r.positiveInt('window_size', 14),
    globalAttnIndexes: r.get(
      'global_attn_indexes',
      (v): v is number[] => Array.isArray(v) && v.every(isNonNegativeInt),
      'an array of block indexes',
      [2, 5, 8, 11],
    ),
    numPosFeats: r.positiveInt('num_pos_feats', 128),
  };
}

function parsePromptEncoder(r: ConfigReader): SamHQPromptEncoderConfig {
  r.choice('hidden_act', ['gelu'], 'gelu');
  const imageSize = r.positiveInt('image_size', 1024);
  const patchSize = r.positiveInt('patch_size', 16);
  const imageEmbeddingSize = Math.floor(imageSize / patchSize);
  // transformers recomputes image_embedding_size from image_size // patch_size; a stored value must agree.
  if (r.has('image_embedding_size') && r.raw('image_embedding_size') !== imageEmbeddingSize) {
    throw new ConfigError(
      `${r.path}: field 'image_embedding_size' = ${showValue(r.raw('image_embedding_size'))} disagrees with image_size // patch_size = ${imageEmbeddingSize}`,
    );
  }
  return {
    hiddenSize: r.positiveInt('hidden_size', 256),
    imageSize,
    patchSize,
    imageEmbeddingSize,
    maskInputChannels: r.positiveInt('mask_input_channels', 16),
    numPointEmbeddings: r.positiveInt('num_point_embeddings', 4),
    layerNormEps: r.positiveNumber('layer_norm_eps', 1e-6),
  };
}

function parseMaskDecoder(r: ConfigReader): SamHQMaskDecoderConfig {
  r.choice('hidden_act', ['relu'], 'relu');
  return {
    hiddenSize: r.positiveInt('hidden_size', 256),
    mlpDim: r.positiveInt('mlp_dim', 2048),
    numHiddenLayers: r.positiveInt('num_hidden_layers', 2),
    numAttentionHeads: r.positiveInt('num_attention_heads', 8),
    attentionDownsampleRate: r.positiveInt('attention_downsample_rate', 2),
    numMultimaskOutputs: r.positiveInt('num_multimask_outputs', 3),
    iouHeadDepth: r.positiveInt('iou_head_depth', 3),
    iouHeadHiddenDim: r.positiveInt('iou_head_hidden_dim', 256),
    layerNormEps: r.positiveNumber('layer_norm_eps', 1e-6),
    vitDim: r.positiveInt('vit_dim', 768),
  };
}

/** Relations between the three parts that the architecture needs (each names the fields involved). */
function checkConsistency(config: SamHQConfig, path: string): void {
  const { vision: v, promptEncoder: p, maskDecoder: m } = config;
  const fail = (what: string): never => {
    throw new ConfigError(`${path}: ${what}`);
  };
  if (v.hiddenSize % v.numAttentionHeads !== 0)
    fail(`vision_config hidden_size ${v.hiddenSize} is not divisible by num_attention_heads ${v.numAttentionHeads}`);
  if (v.imageSize % v.patchSize !== 0) fail(`vision_config image_size ${v.imageSize} is not a multiple of patch_size ${v.patchSize}`);
  const bad = v.globalAttnIndexes.filter((i) => i >= v.numHiddenLayers);
  if (bad.length > 0) fail(`vision_config global_attn_indexes ${showValue(v.globalAttnIndexes)} name blocks beyond num_hidden_layers ${v.numHiddenLayers}`);
  if (new Set(v.globalAttnIndexes).size !== v.globalAttnIndexes.length)
    fail(`vision_config global_attn_indexes ${showValue(v.globalAttnIndexes)} repeat a block`);
  if (v.outputChannels !== p.hiddenSize)
    fail(`vision_config output_channels ${v.outputChannels} differs from prompt_encoder_config hidden_size ${p.hiddenSize}`);
  if (p.hiddenSize !== m.hiddenSize) fail(`prompt_encoder_config hidden_size ${p.hiddenSize} differs from mask_decoder_config hidden_size ${m.hiddenSize}`);
  if (2 * v.numPosFeats !== p.hiddenSize)
    fail(`vision_config num_pos_feats ${v.numPosFeats} must be half of prompt_encoder_config hidden_size ${p.hiddenSize}`);
  if (p.imageSize !== v.imageSize || p.imageEmbeddingSize !== v.imageSize / v.patchSize) {
    fail(`prompt_encoder_config image_size ${p.imageSize} / patch_size ${p.patchSize} do not give the vision grid ${v.imageSize / v.patchSize}`);
  }
  if (m.vitDim !== v.hiddenSize) fail(`mask_decoder_config vit_dim ${m.vitDim} differs from vision_config hidden_size ${v.hiddenSize}`);
  if (m.hiddenSize % 8 !== 0)
    fail(`mask_decoder_config hidden_size ${m.hiddenSize} is not divisible by 8 (the upscaled mask features have hidden_size / 8 channels)`);
  if (m.hiddenSize % m.attentionDownsampleRate !== 0 || (m.hiddenSize / m.attentionDownsampleRate) % m.numAttentionHeads !== 0) {
    fail(
      `mask_decoder_config hidden_size ${m.hiddenSize} / attention_downsample_rate ${m.attentionDownsampleRate} is not divisible by num_attention_heads ${m.numAttentionHeads}`,
    );
  }
  if (m.hiddenSize % m.numAttentionHeads !== 0)
    fail(`mask_decoder_config hidden_size ${m.hiddenSize} is not divisible by num_attention_heads ${m.numAttentionHeads}`);
  if (p.maskInputChannels % 4 !== 0) fail(`prompt_encoder_config mask_input_channels ${p.maskInputChannels} is not divisible by 4`);
  if (m.iouHeadDepth < 2) fail(`mask_decoder_config iou_head_depth ${m.iouHeadDepth} must be at least 2`);
}

/** Parse a transformers SamHQConfig config.json (already JSON-decoded); `path` names it in errors. */
export function parseSamHQConfig(json: unknown, path: string): SamHQConfig {
  const top = ConfigReader.from(json, path);
  const modelType = top.raw('model_type');
  if (modelType !== 'sam_hq') {
    const hint = 'plain SAM (without the HQ token) is not supported: use a SAM-HQ model such as syscv-community/sam-hq-vit-large';
    throw new ConfigError(
      `${path}: field 'model_type' must be "sam_hq" (a transformers SamHQConfig), got ${showValue(modelType)}`,
      modelType === 'sam' ? { hint } : {},
    );
  }
  const config: SamHQConfig = {
    vision: parseVision(section(json, path, 'vision_config')),
    promptEncoder: parsePromptEncoder(section(json, path, 'prompt_encoder_config')),
    maskDecoder: parseMaskDecoder(section(json, path, 'mask_decoder_config')),
  };
  checkConsistency(config, path);
  return deepFreeze(config);
}

export type SamHQVariant = 'vit_b' | 'vit_l' | 'vit_h';

const VARIANTS: Readonly<Record<SamHQVariant, { hidden: number; depth: number; heads: number; global: number[] }>> = {
  vit_b: { hidden: 768, depth: 12, heads: 12, global: [2, 5, 8, 11] },
  vit_l: { hidden: 1024, depth: 24, heads: 16, global: [5, 11, 17, 23] },
  vit_h: { hidden: 1280, depth: 32, heads: 16, global: [7, 15, 23, 31] },
};

export const SAM_HQ_VARIANTS: readonly SamHQVariant[] = ['vit_b', 'vit_l', 'vit_h'];

/** The official sam_hq_vit_{b,l,h} architecture (build_sam.py: image 1024, patch 16, window 14, prompt dim 256). */
export function samHQVariantConfig(variant: SamHQVariant): SamHQConfig {
  const v = VARIANTS[variant];
  const json = {
    model_type: 'sam_hq',
    vision_config: { hidden_size: v.hidden, num_hidden_layers: v.depth, num_attention_heads: v.heads, global_attn_indexes: v.global },
    mask_decoder_config: { vit_dim: v.hidden },
  };
  return parseSamHQConfig(json, `the official SAM-HQ ${variant} config`);
}

/** Every weight a config implies, under its Hugging Face SamHQModel name, with its shape (PyTorch layouts). */
export function samHQWeightShapes(config: SamHQConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const put = (name: string, dims: number[]): void => void shapes.set(name, dims);
  const linear = (name: string, out: number, inp: number, bias = true): void => {
    put(`${name}.weight`, [out, inp]);
    if (bias) put(`${name}.bias`, [out]);
  };
  const norm = (name: string, c: number): void => {
    put(`${name}.weight`, [c]);
    put(`${name}.bias`, [c]);
  };
  const conv = (name: string, dims: [number, number, number, number], bias = true): void => {
    put(`${name}.weight`, dims);
    if (bias) put(`${name}.bias`, [dims[0]]);
  };
  const convT = (name: string, inp: number, out: number): void => {
    put(`${name}.weight`, [inp, out, 2, 2]);
    put(`${name}.bias`, [out]);
  };
  const { vision: v, promptEncoder: p, maskDecoder: m } = config;
  // vision_encoder: [B, 3, S, S] -> patches [B, g, g, C] -> blocks -> neck [B, O, g, g]
  const C = v.hiddenSize;
  const g = v.imageSize / v.patchSize;
  const headDim = C / v.numAttentionHeads;
  conv('vision_encoder.patch_embed.projection', [C, v.numChannels, v.patchSize, v.patchSize]);
  if (v.useAbsPos) put('vision_encoder.pos_embed', [1, g, g, C]);
  for (let i = 0; i < v.numHiddenLayers; i++) {
    const b = `vision_encoder.layers.${i}`;
    norm(`${b}.layer_norm1`, C);
    linear(`${b}.attn.qkv`, 3 * C, C, v.qkvBias);
    linear(`${b}.attn.proj`, C, C);
    if (v.useRelPos) {
      const side = v.globalAttnIndexes.includes(i) ? g : v.windowSize;
      put(`${b}.attn.rel_pos_h`, [2 * side - 1, headDim]);
      put(`${b}.attn.rel_pos_w`, [2 * side - 1, headDim]);
    }
    norm(`${b}.layer_norm2`, C);
    linear(`${b}.mlp.lin1`, v.mlpDim, C);
    linear(`${b}.mlp.lin2`, C, v.mlpDim);
  }
  const O = v.outputChannels;
  conv('vision_encoder.neck.conv1', [O, C, 1, 1], false);
  norm('vision_encoder.neck.layer_norm1', O);
  conv('vision_encoder.neck.conv2', [O, O, 3, 3], false);
  norm('vision_encoder.neck.layer_norm2', O);
  // prompt encoder: random-Fourier PE, point/box embeddings, the mask path [B, 1, 4g, 4g] -> [B, D, g, g]
  const D = p.hiddenSize;
  const mic = p.maskInputChannels;
  put('shared_image_embedding.positional_embedding', [2, v.numPosFeats]);
  for (let i = 0; i < p.numPointEmbeddings; i++) put(`prompt_encoder.point_embed.${i}.weight`, [1, D]);
  put('prompt_encoder.not_a_point_embed.weight', [1, D]);
  put('prompt_encoder.no_mask_embed.weight', [1, D]);
  conv('prompt_encoder.mask_embed.conv1', [mic / 4, 1, 2, 2]);
  norm('prompt_encoder.mask_embed.layer_norm1', mic / 4);
  conv('prompt_encoder.mask_embed.conv2', [mic, mic / 4, 2, 2]);
  norm('prompt_encoder.mask_embed.layer_norm2', mic);
  conv('prompt_encoder.mask_embed.conv3', [D, mic, 1, 1]);
  maskDecoderShapes(m, { put, linear, norm, conv, convT });
  return shapes;
}

interface ShapeWriters {
  put(name: string, dims: number[]): void;
  linear(name: string, out: number, inp: number): void;
  norm(name: string, c: number): void;
  conv(name: string, dims: [number, number, number, number]): void;
  convT(name: string, inp: number, out: number): void;
}

function maskDecoderShapes(m: SamHQMaskDecoderConfig, w: ShapeWriters): void {
  const T = m.hiddenSize;
  const tokens = m.numMultimaskOutputs + 1;
  const mlp = (name: string, inp: number, hidden: number, out: number, depth: number): void => {
    w.linear(`${name}.proj_in`, hidden, inp);
    for (let j = 0; j < depth - 2; j++) w.linear(`${name}.layers.${j}`, hidden, hidden);
    w.linear(`${name}.proj_out`, out, hidden);
  };
  const attention = (name: string, rate: number): void => {
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) w.linear(`${name}.${proj}`, T / rate, T);
    w.linear(`${name}.out_proj`, T, T / rate);
  };
  w.put('mask_decoder.iou_token.weight', [1, T]);
  w.put('mask_decoder.mask_tokens.weight', [tokens, T]);
  w.put('mask_decoder.hq_token.weight', [1, T]);
  for (let l = 0; l < m.numHiddenLayers; l++) {
    const b = `mask_decoder.transformer.layers.${l}`;
    attention(`${b}.self_attn`, 1);
    attention(`${b}.cross_attn_token_to_image`, m.attentionDownsampleRate);
    attention(`${b}.cross_attn_image_to_token`, m.attentionDownsampleRate);
    for (let k = 1; k <= 4; k++) w.norm(`${b}.layer_norm${k}`, T);
    w.linear(`${b}.mlp.lin1`, m.mlpDim, T);
    w.linear(`${b}.mlp.lin2`, T, m.mlpDim);
  }
  attention('mask_decoder.transformer.final_attn_token_to_image', m.attentionDownsampleRate);
  w.norm('mask_decoder.transformer.layer_norm_final_attn', T);
  // output_upscaling: [B, T, g, g] -> [B, T/4, 2g, 2g] -> [B, T/8, 4g, 4g]
  w.convT('mask_decoder.upscale_conv1', T, T / 4);
  w.norm('mask_decoder.upscale_layer_norm', T / 4);
  w.convT('mask_decoder.upscale_conv2', T / 4, T / 8);
  for (let i = 0; i < tokens; i++) mlp(`mask_decoder.output_hypernetworks_mlps.${i}`, T, T, T / 8, 3);
  mlp('mask_decoder.iou_prediction_head', T, m.iouHeadHiddenDim, tokens, m.iouHeadDepth);
  mlp('mask_decoder.hq_mask_mlp', T, T, T / 8, 3);
  // HQ features: compress_vit_feat(interm [B, vit_dim, g, g]) + embedding_encoder(image embeddings), both -> [B, T/8, 4g, 4g]
  w.convT('mask_decoder.compress_vit_conv1', m.vitDim, T);
  w.norm('mask_decoder.compress_vit_norm', T);
  w.convT('mask_decoder.compress_vit_conv2', T, T / 8);
  w.convT('mask_decoder.encoder_conv1', T, T / 4);
  w.norm('mask_decoder.encoder_norm', T / 4);
  w.convT('mask_decoder.encoder_conv2', T / 4, T / 8);
  w.conv('mask_decoder.mask_conv1', [T / 4, T / 8, 3, 3]);
  w.norm('mask_decoder.mask_norm', T / 4);
  w.conv('mask_decoder.mask_conv2', [T / 8, T / 4, 3, 3]);
}

/** A tied alias transformers' SamHQModel may hold next to shared_image_embedding.positional_embedding. */
export const SAM_HQ_TIED_ALIASES: ReadonlyMap<string, string> = new Map([
  ['prompt_encoder.shared_embedding.positional_embedding', 'shared_image_embedding.positional_embedding'],
]);

/**
 * Check weights against a config in both directions: every implied weight present with its shape, nothing else
 * (tied aliases must have the shape of what they alias). `describe` names the weights and the config in errors.
 */
export function checkSamHQWeights(
  config: SamHQConfig,
  weights: { names(): string[]; info(name: string): { dims: readonly number[] } },
  describe: string,
): void {
  const shapes = samHQWeightShapes(config);
  const hint = 'the config does not match these weights: check that config.json belongs to them';
  const names = weights.names();
  const present = new Set(names);
  for (const [name, dims] of shapes) {
    if (!present.has(name)) throw new WeightMissingError(`${describe}: missing weight ${name}: expected ${formatDims(dims)}`, { hint });
  }
  for (const name of names) {
    const dims = shapes.get(name) ?? shapes.get(SAM_HQ_TIED_ALIASES.get(name) ?? '');
    if (dims === undefined) throw new WeightUnusedError(`${describe}: weight ${name} is not part of the SAM-HQ model the config describes`, { hint });
    const actual = weights.info(name).dims;
    if (!sameDims(actual, dims)) throw new WeightShapeError(`${describe}: ${name}: expected ${formatDims(dims)}, got ${formatDims(actual)}`, { hint });
  }
}
