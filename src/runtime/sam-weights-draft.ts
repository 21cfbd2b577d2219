/**
 * TEMPORARY (dropped once src/models/sam/weights.ts and config.ts land from the `pth` branch): opens a SamHQModel
 * folder (config.json + model.safetensors) with a minimal config parse.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { openTensorSource, type TensorSource } from '../io/safetensors.js';
import type { SamModelShapes } from '../models/sam/sam-configs.js';
import { weightsIdentity } from './model-cache.js';

export interface SamWeightsDraft {
  source: TensorSource;
  shapes: SamModelShapes;
  description: string;
  identity: unknown;
}

function num(o: Record<string, unknown>, key: string, file: string): number {
  const v = o[key];
  if (typeof v !== 'number') throw new ConfigError(`${file}: ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function openSamWeightsDraft(path: string): SamWeightsDraft {
  const dir = statSync(path).isDirectory() ? path : join(path, '..');
  const configPath = join(dir, 'config.json');
  const json = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, Record<string, unknown>>;
  const v = json['vision_config']!;
  const p = json['prompt_encoder_config']!;
  const d = json['mask_decoder_config']!;
  const f = configPath;
  const shapes: SamModelShapes = {
    vision: {
      hiddenSize: num(v, 'hidden_size', f),
      outputChannels: num(v, 'output_channels', f),
      numHiddenLayers: num(v, 'num_hidden_layers', f),
      numAttentionHeads: num(v, 'num_attention_heads', f),
      numChannels: num(v, 'num_channels', f),
      imageSize: num(v, 'image_size', f),
      patchSize: num(v, 'patch_size', f),
      mlpDim: num(v, 'mlp_dim', f),
      layerNormEps: num(v, 'layer_norm_eps', f),
      qkvBias: v['qkv_bias'] !== false,
      useAbsPos: v['use_abs_pos'] !== false,
      useRelPos: v['use_rel_pos'] !== false,
      windowSize: num(v, 'window_size', f),
      globalAttnIndexes: v['global_attn_indexes'] as number[],
    },
    prompt: {
      hiddenSize: num(p, 'hidden_size', f),
      imageSize: num(p, 'image_size', f),
      imageEmbeddingSize: num(p, 'image_embedding_size', f),
      maskInputChannels: num(p, 'mask_input_channels', f),
      layerNormEps: num(p, 'layer_norm_eps', f),
    },
    decoder: {
      hiddenSize: num(d, 'hidden_size', f),
      mlpDim: num(d, 'mlp_dim', f),
      numHiddenLayers: num(d, 'num_hidden_layers', f),
      numAttentionHeads: num(d, 'num_attention_heads', f),
      attentionDownsampleRate: num(d, 'attention_downsample_rate', f),
      numMultimaskOutputs: num(d, 'num_multimask_outputs', f),
      iouHeadDepth: num(d, 'iou_head_depth', f),
      iouHeadHiddenDim: num(d, 'iou_head_hidden_dim', f),
      vitDim: num(d, 'vit_dim', f),
    },
  };
  const weightsPath = join(dir, 'model.safetensors');
  return { source: openTensorSource(weightsPath), shapes, description: weightsPath, identity: weightsIdentity(weightsPath) };
}
