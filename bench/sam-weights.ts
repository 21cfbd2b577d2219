/**
 * Every tensor name and shape of a transformers SamHQModel checkpoint, derived from the shapes alone (independently
 * of the graph builders, which check them in both directions), the SAM-HQ ViT-L shapes, and a random-weight model
 * folder (config.json + model.safetensors) for `npm run bench`'s sam phase.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SamModelShapes } from '../src/models/sam/sam-configs.js';
import { writeRandomSafetensors } from './random-model.js';
import { countParameters, type WeightKind, type WeightSpec } from './weight-list.js';

/** SAM-HQ ViT-L (sam_hq_vit_l.pth, syscv-community/sam-hq-vit-large). */
export const SAM_HQ_VIT_L: SamModelShapes = {
  vision: {
    hiddenSize: 1024,
    outputChannels: 256,
    numHiddenLayers: 24,
    numAttentionHeads: 16,
    numChannels: 3,
    imageSize: 1024,
    patchSize: 16,
    mlpDim: 4096,
    layerNormEps: 1e-6,
    qkvBias: true,
    useAbsPos: true,
    useRelPos: true,
    windowSize: 14,
    globalAttnIndexes: [5, 11, 17, 23],
  },
  prompt: { hiddenSize: 256, imageSize: 1024, imageEmbeddingSize: 64, maskInputChannels: 16, layerNormEps: 1e-6 },
  decoder: {
    hiddenSize: 256,
    mlpDim: 2048,
    numHiddenLayers: 2,
    numAttentionHeads: 8,
    attentionDownsampleRate: 2,
    numMultimaskOutputs: 3,
    iouHeadDepth: 3,
    iouHeadHiddenDim: 256,
    vitDim: 1024,
  },
};

export function samWeightSpecs(shapes: SamModelShapes): WeightSpec[] {
  const specs: WeightSpec[] = [];
  const add = (name: string, dims: number[], kind: WeightKind = 'weight'): void => {
    specs.push({ name, dims, dtype: 'float32', kind });
  };
  const norm = (p: string, c: number): void => {
    add(`${p}.weight`, [c], 'norm-weight');
    add(`${p}.bias`, [c], 'norm-bias');
  };
  const linear = (p: string, i: number, o: number, bias = true): void => {
    add(`${p}.weight`, [o, i]);
    if (bias) add(`${p}.bias`, [o], 'bias');
  };
  const conv = (p: string, i: number, o: number, k: number, bias = true): void => {
    add(`${p}.weight`, [o, i, k, k]);
    if (bias) add(`${p}.bias`, [o], 'bias');
  };
  const convT = (p: string, i: number, o: number): void => {
    add(`${p}.weight`, [i, o, 2, 2]);
    add(`${p}.bias`, [o], 'bias');
  };
  const mlp = (p: string, i: number, h: number, o: number, layers: number): void => {
    linear(`${p}.proj_in`, i, h);
    for (let k = 0; k < layers - 2; k++) linear(`${p}.layers.${k}`, h, h);
    linear(`${p}.proj_out`, h, o);
  };
  const { vision: v, prompt: p, decoder: d } = shapes;
  const grid = v.imageSize / v.patchSize;
  const headDim = v.hiddenSize / v.numAttentionHeads;
  conv('vision_encoder.patch_embed.projection', v.numChannels, v.hiddenSize, v.patchSize);
  if (v.useAbsPos) add('vision_encoder.pos_embed', [1, grid, grid, v.hiddenSize]);
  for (let i = 0; i < v.numHiddenLayers; i++) {
    const l = `vision_encoder.layers.${i}`;
    const side = v.globalAttnIndexes.includes(i) ? grid : v.windowSize;
    norm(`${l}.layer_norm1`, v.hiddenSize);
    linear(`${l}.attn.qkv`, v.hiddenSize, 3 * v.hiddenSize, v.qkvBias);
    if (v.useRelPos) {
      add(`${l}.attn.rel_pos_h`, [2 * side - 1, headDim]);
      add(`${l}.attn.rel_pos_w`, [2 * side - 1, headDim]);
    }
    linear(`${l}.attn.proj`, v.hiddenSize, v.hiddenSize);
    norm(`${l}.layer_norm2`, v.hiddenSize);
    linear(`${l}.mlp.lin1`, v.hiddenSize, v.mlpDim);
    linear(`${l}.mlp.lin2`, v.mlpDim, v.hiddenSize);
  }
  conv('vision_encoder.neck.conv1', v.hiddenSize, v.outputChannels, 1, false);
  norm('vision_encoder.neck.layer_norm1', v.outputChannels);
  conv('vision_encoder.neck.conv2', v.outputChannels, v.outputChannels, 3, false);
  norm('vision_encoder.neck.layer_norm2', v.outputChannels);

  const c = p.hiddenSize;
  add('shared_image_embedding.positional_embedding', [2, c / 2]);
  for (let i = 0; i < 4; i++) add(`prompt_encoder.point_embed.${i}.weight`, [1, c]);
  add('prompt_encoder.not_a_point_embed.weight', [1, c]);
  add('prompt_encoder.no_mask_embed.weight', [1, c]);
  conv('prompt_encoder.mask_embed.conv1', 1, p.maskInputChannels / 4, 2);
  norm('prompt_encoder.mask_embed.layer_norm1', p.maskInputChannels / 4);
  conv('prompt_encoder.mask_embed.conv2', p.maskInputChannels / 4, p.maskInputChannels, 2);
  norm('prompt_encoder.mask_embed.layer_norm2', p.maskInputChannels);
  conv('prompt_encoder.mask_embed.conv3', p.maskInputChannels, c, 1);

  const m = 'mask_decoder';
  const tokens = d.numMultimaskOutputs + 1;
  const internal = d.hiddenSize / d.attentionDownsampleRate;
  const attention = (a: string, inner: number): void => {
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) linear(`${a}.${proj}`, d.hiddenSize, inner);
    linear(`${a}.out_proj`, inner, d.hiddenSize);
  };
  for (let i = 0; i < d.numHiddenLayers; i++) {
    const l = `${m}.transformer.layers.${i}`;
    attention(`${l}.self_attn`, d.hiddenSize);
    attention(`${l}.cross_attn_token_to_image`, internal);
    attention(`${l}.cross_attn_image_to_token`, internal);
    for (let k = 1; k <= 4; k++) norm(`${l}.layer_norm${k}`, d.hiddenSize);
    linear(`${l}.mlp.lin1`, d.hiddenSize, d.mlpDim);
    linear(`${l}.mlp.lin2`, d.mlpDim, d.hiddenSize);
  }
  attention(`${m}.transformer.final_attn_token_to_image`, internal);
  norm(`${m}.transformer.layer_norm_final_attn`, d.hiddenSize);
  add(`${m}.iou_token.weight`, [1, d.hiddenSize]);
  add(`${m}.mask_tokens.weight`, [tokens, d.hiddenSize]);
  add(`${m}.hq_token.weight`, [1, d.hiddenSize]);
  const h = d.hiddenSize;
  convT(`${m}.upscale_conv1`, h, h / 4);
  norm(`${m}.upscale_layer_norm`, h / 4);
  convT(`${m}.upscale_conv2`, h / 4, h / 8);
  for (let i = 0; i < tokens; i++) mlp(`${m}.output_hypernetworks_mlps.${i}`, h, h, h / 8, 3);
  mlp(`${m}.iou_prediction_head`, h, d.iouHeadHiddenDim, tokens, d.iouHeadDepth);
  mlp(`${m}.hq_mask_mlp`, h, h, h / 8, 3);
  convT(`${m}.compress_vit_conv1`, d.vitDim, h);
  norm(`${m}.compress_vit_norm`, h);
  convT(`${m}.compress_vit_conv2`, h, h / 8);
  convT(`${m}.encoder_conv1`, h, h / 4);
  norm(`${m}.encoder_norm`, h / 4);
  convT(`${m}.encoder_conv2`, h / 4, h / 8);
  conv(`${m}.mask_conv1`, h / 8, h / 4, 3);
  norm(`${m}.mask_norm`, h / 4);
  conv(`${m}.mask_conv2`, h / 4, h / 8, 3);
  return specs;
}

/** transformers' SamHQConfig config.json for the shapes. */
export function samHqConfigJson(shapes: SamModelShapes): Record<string, unknown> {
  const { vision: v, prompt: p, decoder: d } = shapes;
  return {
    architectures: ['SamHQModel'],
    model_type: 'sam_hq',
    vision_config: {
      model_type: 'sam_hq_vision_model',
      hidden_size: v.hiddenSize,
      output_channels: v.outputChannels,
      num_hidden_layers: v.numHiddenLayers,
      num_attention_heads: v.numAttentionHeads,
      num_channels: v.numChannels,
      image_size: v.imageSize,
      patch_size: v.patchSize,
      hidden_act: 'gelu',
      layer_norm_eps: v.layerNormEps,
      qkv_bias: v.qkvBias,
      mlp_ratio: v.mlpDim / v.hiddenSize,
      use_abs_pos: v.useAbsPos,
      use_rel_pos: v.useRelPos,
      window_size: v.windowSize,
      global_attn_indexes: [...v.globalAttnIndexes],
      num_pos_feats: p.hiddenSize / 2,
      mlp_dim: v.mlpDim,
    },
    prompt_encoder_config: {
      hidden_size: p.hiddenSize,
      image_size: p.imageSize,
      patch_size: v.patchSize,
      image_embedding_size: p.imageEmbeddingSize,
      mask_input_channels: p.maskInputChannels,
      num_point_embeddings: 4,
      hidden_act: 'gelu',
      layer_norm_eps: p.layerNormEps,
    },
    mask_decoder_config: {
      hidden_size: d.hiddenSize,
      hidden_act: 'relu',
      mlp_dim: d.mlpDim,
      num_hidden_layers: d.numHiddenLayers,
      num_attention_heads: d.numAttentionHeads,
      attention_downsample_rate: d.attentionDownsampleRate,
      num_multimask_outputs: d.numMultimaskOutputs,
      iou_head_depth: d.iouHeadDepth,
      iou_head_hidden_dim: d.iouHeadHiddenDim,
      layer_norm_eps: 1e-6,
      vit_dim: d.vitDim,
    },
  };
}

const SENTINEL = '.bench-complete.json';

/** A random SAM-HQ model folder of the shapes in `dir` (kept across runs; regenerated when incomplete). */
export function ensureRandomSamModel(
  dir: string,
  shapes: SamModelShapes,
  log: (msg: string) => void = () => {},
): { dir: string; parameters: number; generated: boolean } {
  const specs = samWeightSpecs(shapes);
  const parameters = countParameters(specs);
  const config = JSON.stringify(samHqConfigJson(shapes), null, 2);
  const sentinel = join(dir, SENTINEL);
  if (existsSync(sentinel) && existsSync(join(dir, 'config.json')) && readFileSync(join(dir, 'config.json'), 'utf8') === config) {
    return { dir, parameters, generated: false };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`generating SAM-HQ: ${specs.length} tensors, ${(parameters / 1e6).toFixed(1)} M parameters`);
  writeRandomSafetensors(join(dir, 'model.safetensors'), specs, 0x4567891);
  writeFileSync(join(dir, 'config.json'), config);
  writeFileSync(sentinel, JSON.stringify({ parameters, date: new Date().toISOString() }));
  return { dir, parameters, generated: true };
}
