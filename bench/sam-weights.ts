/**
 * Every tensor name and shape of a transformers SamHQModel checkpoint, derived from the shapes alone (independently
 * of the graph builders, which check them in both directions), the SAM-HQ ViT-L shapes, and a random-weight model
 * folder (config.json + model.safetensors) for `npm run bench`'s sam phase.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { samHQVariantConfig, samHQWeightShapes } from '../src/models/sam/config.js';
import { samModelShapes, type SamModelShapes } from '../src/models/sam/sam-configs.js';
import { writeRandomSafetensors } from './random-model.js';
import { countParameters, type WeightKind, type WeightSpec } from './weight-list.js';

/** SAM-HQ ViT-L (sam_hq_vit_l.pth, syscv-community/sam-hq-vit-large): the official variant's config. */
export const SAM_HQ_VIT_L: SamModelShapes = samModelShapes(samHQVariantConfig('vit_l'));

/** Every tensor of a SamHQModel checkpoint of these shapes (samHQWeightShapes), with its kind for the random init. */
export function samWeightSpecs(shapes: SamModelShapes): WeightSpec[] {
  const config = { vision: shapes.vision, promptEncoder: shapes.prompt, maskDecoder: shapes.decoder };
  return [...samHQWeightShapes(config)].map(([name, dims]) => {
    const norm = /norm[^.]*\.(weight|bias)$/.test(name);
    const kind: WeightKind = name.endsWith('.bias') ? (norm ? 'norm-bias' : 'bias') : norm ? 'norm-weight' : 'weight';
    return { name, dims, dtype: 'float32', kind };
  });
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
