import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadVaeConfig, parseVaeConfig } from '../../src/config/vae-config.js';
import { ConfigError } from '../../src/errors.js';
import { fixturesDir, sd1TinyModelDir } from '../helpers/paths.js';

const P = 'vae/config.json';

function throwsConfig(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test('fixture sd1-tiny VAE', () => {
  const config = loadVaeConfig(join(sd1TinyModelDir, 'vae', 'config.json'));
  assert.deepEqual(config.blockOutChannels, [8, 16, 32, 32]);
  assert.equal(config.layersPerBlock, 2);
  assert.equal(config.normNumGroups, 4);
  assert.equal(config.latentChannels, 4);
  assert.equal(config.sampleSize, 128);
  assert.equal(config.scalingFactor, 0.18215);
  assert.equal(config.forceUpcast, true);
  assert.equal(config.downBlockTypes.length, 4);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.upBlockTypes));
});

test('SD-1.5 VAE', () => {
  const config = loadVaeConfig(join(fixturesDir, 'configs', 'sd-1.5', 'vae', 'config.json'));
  assert.deepEqual(config.blockOutChannels, [128, 256, 512, 512]);
  assert.equal(config.normNumGroups, 32);
  assert.equal(config.sampleSize, 512);
  assert.equal(config.inChannels, 3);
  assert.equal(config.outChannels, 3);
  assert.equal(config.actFn, 'silu');
  assert.equal(config.className, 'AutoencoderKL');
});

test('AutoencoderKL defaults: scaling_factor 0.18215, one 64-channel block', () => {
  const config = parseVaeConfig({ block_out_channels: [64] }, P);
  assert.equal(config.scalingFactor, 0.18215);
  assert.equal(config.layersPerBlock, 1);
  assert.equal(config.sampleSize, 32);
  assert.equal(config.normNumGroups, 32);
  assert.deepEqual(config.downBlockTypes, ['DownEncoderBlock2D']);
  assert.deepEqual(parseVaeConfig({ block_out_channels: [64], scaling_factor: 0.13025 }, P).scalingFactor, 0.13025);
});

test('VAE errors', () => {
  throwsConfig(
    () => parseVaeConfig({ block_out_channels: [64, 128] }, P),
    `${P}: field 'down_block_types' must have as many entries as 'block_out_channels' (2), got 1`,
  );
  throwsConfig(() => parseVaeConfig({ scaling_factor: -1 }, P), `${P}: field 'scaling_factor' must be a positive number, got -1`);
  throwsConfig(
    () => parseVaeConfig({ down_block_types: ['AttnDownEncoderBlock2D'] }, P),
    `${P}: field 'down_block_types[0]' = "AttnDownEncoderBlock2D" is not supported (supported: "DownEncoderBlock2D")`,
  );
  throwsConfig(
    () => parseVaeConfig({ block_out_channels: [48] }, P),
    `${P}: field 'block_out_channels' = [48]: block 0 has 48 channels, not divisible by norm_num_groups 32`,
  );
  throwsConfig(() => parseVaeConfig({ force_upcast: 'yes' }, P), `${P}: field 'force_upcast' must be a boolean, got "yes"`);
});
