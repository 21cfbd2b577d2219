import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUNetConfig, parseUNetConfig } from '../../src/config/unet-config.js';
import { ConfigError, FileError } from '../../src/errors.js';
import { fixturesDir, sd1TinyModelDir } from '../helpers/paths.js';

const P = 'unet/config.json';
const sd15 = JSON.parse(readFileSync(join(fixturesDir, 'configs', 'sd-1.5', 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;

/** The UNet of stabilityai/stable-diffusion-2-1 (768-v), as its config.json gives it. */
const sd21 = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.19.3',
  act_fn: 'silu',
  attention_head_dim: [5, 10, 20, 20],
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 1024,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  dual_cross_attention: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  num_class_embeds: null,
  only_cross_attention: false,
  out_channels: 4,
  sample_size: 96,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  upcast_attention: true,
  use_linear_projection: true,
};

function throwsConfig(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'E_CONFIG');
    assert.equal(error.message.split('\n')[0], message);
    return true;
  });
}

const withField = (field: string, value: unknown): Record<string, unknown> => ({ ...sd15, [field]: value });

test('fixture sd1-tiny UNet: attention_head_dim 2 means 2 heads per block', () => {
  const config = loadUNetConfig(join(sd1TinyModelDir, 'unet', 'config.json'));
  assert.deepEqual(config.blockOutChannels, [8, 16, 32, 32]);
  assert.equal(config.attentionHeadDim, 2);
  assert.deepEqual(config.numAttentionHeads, [2, 2, 2, 2]);
  assert.equal(config.crossAttentionDim, 32);
  assert.equal(config.sampleSize, 16);
  assert.equal(config.normNumGroups, 4);
  assert.equal(config.layersPerBlock, 2);
  assert.deepEqual(config.transformerLayersPerBlock, [1, 1, 1, 1]);
  assert.deepEqual(config.onlyCrossAttention, [false, false, false, false]);
  assert.equal(config.timeEmbeddingDim, 32);
  assert.equal(config.useLinearProjection, false);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.blockOutChannels) && Object.isFrozen(config.numAttentionHeads));
});

test('SD-1.5 UNet: 8 heads per block of 40/80/160/160 channels', () => {
  const config = parseUNetConfig(sd15, P);
  assert.deepEqual(config.numAttentionHeads, [8, 8, 8, 8]);
  assert.deepEqual(
    config.blockOutChannels.map((c, i) => c / config.numAttentionHeads[i]!),
    [40, 80, 160, 160],
  );
  assert.equal(config.crossAttentionDim, 768);
  assert.equal(config.timeEmbeddingDim, 1280);
  assert.equal(config.sampleSize, 64);
  assert.equal(config.midBlockType, 'UNetMidBlock2DCrossAttn');
  assert.deepEqual(config.downBlockTypes, ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D']);
  assert.deepEqual(config.upBlockTypes, ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D']);
  assert.equal(config.flipSinToCos, true);
  assert.equal(config.freqShift, 0);
  assert.equal(config.normEps, 1e-5);
  assert.equal(config.actFn, 'silu');
  assert.equal(config.className, 'UNet2DConditionModel');
});

test('SD-2.1 UNet: attention_head_dim [5, 10, 20, 20] are head counts, each head 64 wide', () => {
  const config = parseUNetConfig(sd21, P);
  assert.deepEqual(config.attentionHeadDim, [5, 10, 20, 20]);
  assert.deepEqual(config.numAttentionHeads, [5, 10, 20, 20]);
  assert.deepEqual(
    config.blockOutChannels.map((c, i) => c / config.numAttentionHeads[i]!),
    [64, 64, 64, 64],
  );
  const upChannels = [...config.blockOutChannels].reverse();
  assert.deepEqual(
    upChannels.map((c, i) => c / [...config.numAttentionHeads].reverse()[i]!),
    [64, 64, 64, 64],
  );
  assert.equal(config.useLinearProjection, true);
  assert.equal(config.upcastAttention, true);
  assert.equal(config.crossAttentionDim, 1024);
  assert.equal(config.sampleSize, 96);
  // Keys absent from this config take the diffusers 0.19.3 defaults.
  assert.equal(config.convInKernel, 3);
  assert.deepEqual(config.transformerLayersPerBlock, [1, 1, 1, 1]);
});

test('an empty config gives the UNet2DConditionModel defaults', () => {
  const config = parseUNetConfig({}, P);
  assert.deepEqual(config.blockOutChannels, [320, 640, 1280, 1280]);
  assert.equal(config.crossAttentionDim, 1280);
  assert.deepEqual(config.numAttentionHeads, [8, 8, 8, 8]);
  assert.equal(config.sampleSize, null);
  assert.equal(config.inChannels, 4);
  assert.equal(config.normNumGroups, 32);
  assert.equal(config.downsamplePadding, 1);
  assert.equal(config.midBlockScaleFactor, 1);
  assert.equal(config.centerInputSample, false);
});

test('per-block lists: cross_attention_dim, only_cross_attention, transformer_layers_per_block, uniform layers_per_block', () => {
  const config = parseUNetConfig(
    {
      ...sd15,
      cross_attention_dim: [768, 768, 1024, 1024],
      only_cross_attention: [true, false, false, false],
      transformer_layers_per_block: [1, 2, 10, 10],
      layers_per_block: [2, 2, 2, 2],
    },
    P,
  );
  assert.deepEqual(config.crossAttentionDim, [768, 768, 1024, 1024]);
  assert.deepEqual(config.onlyCrossAttention, [true, false, false, false]);
  assert.deepEqual(config.transformerLayersPerBlock, [1, 2, 10, 10]);
  assert.equal(config.layersPerBlock, 2);
});

test('invalid values name the file and the field', () => {
  throwsConfig(() => parseUNetConfig([1], P), `${P}: config must be a JSON object, got [1]`);
  throwsConfig(
    () => parseUNetConfig(withField('block_out_channels', [320, -1, 1280, 1280]), P),
    `${P}: field 'block_out_channels' must be a non-empty array of positive integers, got [320,-1,1280,1280]`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('block_out_channels', [320, 640, 1280]), P),
    `${P}: field 'block_out_channels' must have as many entries as 'down_block_types' (4), got 3`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('up_block_types', ['UpBlock2D']), P),
    `${P}: field 'up_block_types' must have as many entries as 'down_block_types' (4), got 1`,
  );
  throwsConfig(() => parseUNetConfig(withField('in_channels', 0), P), `${P}: field 'in_channels' must be a positive integer, got 0`);
  throwsConfig(() => parseUNetConfig(withField('norm_eps', '1e-5'), P), `${P}: field 'norm_eps' must be a positive number, got "1e-5"`);
  throwsConfig(() => parseUNetConfig(withField('use_linear_projection', 1), P), `${P}: field 'use_linear_projection' must be a boolean, got 1`);
  throwsConfig(
    () => parseUNetConfig(withField('attention_head_dim', [8, 8]), P),
    `${P}: field 'attention_head_dim' must be a positive integer or an array of 4 of them (one per block), got [8,8]`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('cross_attention_dim', 'big'), P),
    `${P}: field 'cross_attention_dim' must be a positive integer or an array of 4 of them (one per block), got "big"`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('attention_head_dim', 3), P),
    `${P}: field 'attention_head_dim' gives 3 heads for block 0 of 320 channels; the channels must be divisible by the number of heads`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('norm_num_groups', 48), P),
    `${P}: field 'block_out_channels' = [320,640,1280,1280]: block 0 has 320 channels, not divisible by norm_num_groups 48`,
  );
  throwsConfig(() => parseUNetConfig(withField('conv_in_kernel', 4), P), `${P}: field 'conv_in_kernel' must be an odd positive integer, got 4`);
  throwsConfig(() => parseUNetConfig(withField('sample_size', 'x'), P), `${P}: field 'sample_size' must be a positive integer or null, got "x"`);
});

test('unsupported features are refused as unsupported', () => {
  const cases: [string, unknown, string][] = [
    ['time_embedding_type', 'fourier', '"positional"'],
    ['resnet_time_scale_shift', 'scale_shift', '"default"'],
    ['addition_embed_type', 'text', 'null'],
    ['class_embed_type', 'timestep', 'null'],
    ['encoder_hid_dim', 768, 'null'],
    ['num_class_embeds', 10, 'null'],
    ['dual_cross_attention', true, 'false'],
    ['resnet_out_scale_factor', 2, '1'],
    ['act_fn', 'gelu', '"silu"'],
    ['mid_block_type', 'UNetMidBlock2DSimpleCrossAttn', '"UNetMidBlock2DCrossAttn"'],
    ['mid_block_type', null, '"UNetMidBlock2DCrossAttn"'],
  ];
  for (const [field, value, supported] of cases) {
    throwsConfig(
      () => parseUNetConfig(withField(field, value), P),
      `${P}: field '${field}' = ${JSON.stringify(value)} is not supported (supported: ${supported})`,
    );
  }
  throwsConfig(
    () => parseUNetConfig(withField('down_block_types', ['CrossAttnDownBlock2D', 'SimpleCrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D']), P),
    `${P}: field 'down_block_types[1]' = "SimpleCrossAttnDownBlock2D" is not supported (supported: "CrossAttnDownBlock2D", "DownBlock2D")`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('up_block_types', ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D']), P),
    `${P}: field 'up_block_types[1]' = "AttnUpBlock2D" is not supported (supported: "UpBlock2D", "CrossAttnUpBlock2D")`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('layers_per_block', [1, 2, 2, 2]), P),
    `${P}: field 'layers_per_block' = [1,2,2,2] is not supported (supported: one value for every block)`,
  );
  throwsConfig(
    () => parseUNetConfig(withField('num_attention_heads', 8), P),
    `${P}: field 'num_attention_heads' = 8 is not supported (diffusers 0.19.3 rejects it; the number of heads is given by 'attention_head_dim')`,
  );
});

test('loadUNetConfig: missing file is a FileError, bad JSON a ConfigError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-unet-config-'));
  try {
    const missing = join(dir, 'config.json');
    assert.throws(
      () => loadUNetConfig(missing),
      (error: unknown) => {
        assert.ok(error instanceof FileError);
        assert.equal(error.message, `${missing}: config file not found\n  hint: check the model folder layout`);
        return true;
      },
    );
    const text = '{"in_channels": 4,}';
    writeFileSync(missing, text);
    const detail = ((): string => {
      try {
        JSON.parse(text);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    assert.notEqual(detail, '');
    throwsConfig(() => loadUNetConfig(missing), `${missing}: invalid JSON (${detail})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
