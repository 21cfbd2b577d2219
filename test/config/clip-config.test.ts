import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadClipTextConfig, parseClipTextConfig } from '../../src/config/clip-config.js';
import { ConfigError } from '../../src/errors.js';
import { fixturesDir, sd1TinyModelDir } from '../helpers/paths.js';

const P = 'text_encoder/config.json';

function throwsConfig(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test('fixture sd1-tiny text encoder', () => {
  const config = loadClipTextConfig(join(sd1TinyModelDir, 'text_encoder', 'config.json'));
  assert.equal(config.hiddenSize, 32);
  assert.equal(config.numHiddenLayers, 2);
  assert.equal(config.numAttentionHeads, 4);
  assert.equal(config.headDim, 8);
  assert.equal(config.intermediateSize, 128);
  assert.equal(config.hiddenAct, 'quick_gelu');
  assert.equal(config.maxPositionEmbeddings, 77);
  assert.equal(config.vocabSize, 49408);
  assert.equal(config.layerNormEps, 1e-5);
  assert.ok(Object.isFrozen(config));
});

test('SD-1.5 text encoder (CLIP ViT-L/14)', () => {
  const config = loadClipTextConfig(join(fixturesDir, 'configs', 'sd-1.5', 'text_encoder', 'config.json'));
  assert.equal(config.hiddenSize, 768);
  assert.equal(config.numHiddenLayers, 12);
  assert.equal(config.numAttentionHeads, 12);
  assert.equal(config.intermediateSize, 3072);
  assert.equal(config.projectionDim, 768);
  assert.equal(config.modelType, 'clip_text_model');
});

test('SD-2 text encoder (OpenCLIP ViT-H, 23 layers, gelu)', () => {
  const config = parseClipTextConfig(
    {
      architectures: ['CLIPTextModel'],
      model_type: 'clip_text_model',
      hidden_act: 'gelu',
      hidden_size: 1024,
      intermediate_size: 4096,
      num_attention_heads: 16,
      num_hidden_layers: 23,
      projection_dim: 512,
      vocab_size: 49408,
      max_position_embeddings: 77,
      layer_norm_eps: 1e-5,
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
    },
    P,
  );
  assert.equal(config.hiddenAct, 'gelu');
  assert.equal(config.numHiddenLayers, 23);
  assert.equal(config.headDim, 64);
  assert.equal(config.eosTokenId, 2);
});

test('CLIP text config errors', () => {
  throwsConfig(
    () => parseClipTextConfig({ hidden_size: 100, num_attention_heads: 8 }, P),
    `${P}: field 'hidden_size' (100) must be divisible by 'num_attention_heads' (8)`,
  );
  throwsConfig(() => parseClipTextConfig({ hidden_act: 'relu' }, P), `${P}: field 'hidden_act' = "relu" is not supported (supported: "quick_gelu", "gelu")`);
  throwsConfig(() => parseClipTextConfig({ model_type: 'clip' }, P), `${P}: field 'model_type' = "clip" is not supported (supported: "clip_text_model")`);
  throwsConfig(() => parseClipTextConfig({ num_hidden_layers: 1.5 }, P), `${P}: field 'num_hidden_layers' must be a positive integer, got 1.5`);
  throwsConfig(() => parseClipTextConfig('x', P), `${P}: config must be a JSON object, got "x"`);
});
