/**
 * AutoencoderKL config (vae/config.json) with diffusers 0.19.3 defaults. `scaling_factor` lives here: latents
 * fed to the UNet are `encoder mean * scalingFactor`, and the decoder receives `latents / scalingFactor`.
 */
import { ConfigError } from '../errors.js';
import { ConfigReader, deepFreeze, isBoolean, isPositiveInt, isString, loadJsonConfig, showValue } from './config-reader.js';

export const VAE_DOWN_BLOCK_TYPES = ['DownEncoderBlock2D'] as const;
export const VAE_UP_BLOCK_TYPES = ['UpDecoderBlock2D'] as const;

export interface VaeConfig {
  readonly className: string | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly downBlockTypes: readonly (typeof VAE_DOWN_BLOCK_TYPES)[number][];
  readonly upBlockTypes: readonly (typeof VAE_UP_BLOCK_TYPES)[number][];
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: number;
  readonly actFn: 'silu';
  readonly latentChannels: number;
  readonly normNumGroups: number;
  /** Image size the VAE was trained at. */
  readonly sampleSize: number;
  readonly scalingFactor: number;
  /** diffusers runs the VAE in float32 when true; a hint for our precision policy. */
  readonly forceUpcast: boolean;
}

function blockTypes<T extends string>(r: ConfigReader, field: string, supported: readonly T[]): T[] {
  const types = r.array(field, isString, 'block type names', supported);
  types.forEach((type, i) => {
    if (!(supported as readonly string[]).includes(type)) throw r.unsupported(`${field}[${i}]`, type, supported.map((s) => `"${s}"`).join(', '));
  });
  return types as T[];
}

export function parseVaeConfig(json: unknown, path: string): VaeConfig {
  const r = ConfigReader.from(json, path);
  const downBlockTypes = blockTypes(r, 'down_block_types', VAE_DOWN_BLOCK_TYPES);
  const upBlockTypes = blockTypes(r, 'up_block_types', VAE_UP_BLOCK_TYPES);
  const blockOutChannels = r.array('block_out_channels', isPositiveInt, 'positive integers', [64]);
  for (const [field, list] of [
    ['down_block_types', downBlockTypes],
    ['up_block_types', upBlockTypes],
  ] as const) {
    if (list.length !== blockOutChannels.length) {
      throw new ConfigError(`${path}: field '${field}' must have as many entries as 'block_out_channels' (${blockOutChannels.length}), got ${list.length}`);
    }
  }
  const normNumGroups = r.positiveInt('norm_num_groups', 32);
  blockOutChannels.forEach((c, i) => {
    if (c % normNumGroups !== 0) {
      throw new ConfigError(
        `${path}: field 'block_out_channels' = ${showValue(blockOutChannels)}: block ${i} has ${c} channels, not divisible by norm_num_groups ${normNumGroups}`,
      );
    }
  });
  const config: VaeConfig = {
    className: r.nullable('_class_name', isString, 'a string', null),
    inChannels: r.positiveInt('in_channels', 3),
    outChannels: r.positiveInt('out_channels', 3),
    downBlockTypes,
    upBlockTypes,
    blockOutChannels,
    layersPerBlock: r.positiveInt('layers_per_block', 1),
    actFn: r.choice('act_fn', ['silu'], 'silu'),
    latentChannels: r.positiveInt('latent_channels', 4),
    normNumGroups,
    sampleSize: r.positiveInt('sample_size', 32),
    scalingFactor: r.positiveNumber('scaling_factor', 0.18215),
    forceUpcast: r.get('force_upcast', isBoolean, 'a boolean', true),
  };
  return deepFreeze(config);
}

/** diffusers' class name for the same config. */

/** Read and parse `vae/config.json`. */
export function loadVaeConfig(path: string): VaeConfig {
  return parseVaeConfig(loadJsonConfig(path), path);
}
