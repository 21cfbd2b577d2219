/**
 * CLIPTextConfig (text_encoder/config.json, transformers naming) with the transformers defaults.
 * SD-1: hidden 768, 12 layers, quick_gelu. SD-2: hidden 1024, 23 layers, gelu.
 */
import { ConfigError } from '../errors.js';
import { ConfigReader, deepFreeze, isInt, isString, loadJsonConfig } from './config-reader.js';

export interface ClipTextConfig {
  readonly modelType: string | null;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  /** hiddenSize / numAttentionHeads. */
  readonly headDim: number;
  readonly maxPositionEmbeddings: number;
  readonly hiddenAct: 'quick_gelu' | 'gelu';
  readonly layerNormEps: number;
  readonly projectionDim: number;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
}

export function parseClipTextConfig(json: unknown, path: string): ClipTextConfig {
  const r = ConfigReader.from(json, path);
  const modelType = r.nullable('model_type', isString, 'a string', null);
  if (modelType !== null && modelType !== 'clip_text_model') throw r.unsupported('model_type', modelType, '"clip_text_model"');
  const hiddenSize = r.positiveInt('hidden_size', 512);
  const numAttentionHeads = r.positiveInt('num_attention_heads', 8);
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ConfigError(`${path}: field 'hidden_size' (${hiddenSize}) must be divisible by 'num_attention_heads' (${numAttentionHeads})`);
  }
  const config: ClipTextConfig = {
    modelType,
    vocabSize: r.positiveInt('vocab_size', 49408),
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size', 2048),
    numHiddenLayers: r.positiveInt('num_hidden_layers', 12),
    numAttentionHeads,
    headDim: hiddenSize / numAttentionHeads,
    maxPositionEmbeddings: r.positiveInt('max_position_embeddings', 77),
    hiddenAct: r.choice('hidden_act', ['quick_gelu', 'gelu'], 'quick_gelu'),
    layerNormEps: r.positiveNumber('layer_norm_eps', 1e-5),
    projectionDim: r.positiveInt('projection_dim', 512),
    padTokenId: r.get('pad_token_id', isInt, 'an integer', 1),
    bosTokenId: r.get('bos_token_id', isInt, 'an integer', 49406),
    eosTokenId: r.get('eos_token_id', isInt, 'an integer', 49407),
  };
  return deepFreeze(config);
}

/** transformers' class name for the same config. */

/** Read and parse `text_encoder/config.json`. */
export function loadClipTextConfig(path: string): ClipTextConfig {
  return parseClipTextConfig(loadJsonConfig(path), path);
}
