/**
 * UNet2DConditionModel config (unet/config.json), as diffusers 0.19.3 reads it: defaults from
 * `UNet2DConditionModel.__init__`, the same consistency checks, and the attention-head quirk resolved once
 * (see resolveAttentionHeads). Features we do not build (class / addition embeddings, other time embeddings,
 * scale-shift resnets, other block types) are rejected here, at the edge, with "is not supported".
 */
import { ConfigError } from '../errors.js';
import { ConfigReader, deepFreeze, isBoolean, isPositiveInt, isString, loadJsonConfig, showValue } from './config-reader.js';

export const UNET_DOWN_BLOCK_TYPES = ['CrossAttnDownBlock2D', 'DownBlock2D'] as const;
export const UNET_UP_BLOCK_TYPES = ['UpBlock2D', 'CrossAttnUpBlock2D'] as const;
export const UNET_MID_BLOCK_TYPES = ['UNetMidBlock2DCrossAttn'] as const;
export type UNetDownBlockType = (typeof UNET_DOWN_BLOCK_TYPES)[number];
export type UNetUpBlockType = (typeof UNET_UP_BLOCK_TYPES)[number];
export type UNetMidBlockType = (typeof UNET_MID_BLOCK_TYPES)[number];

export interface UNetConfig {
  readonly className: string | null;
  /** Latent height = width the model was trained at (SD-1: 64, SD-2.1: 96); null when the config has none. */
  readonly sampleSize: number | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly centerInputSample: boolean;
  readonly flipSinToCos: boolean;
  readonly freqShift: number;
  readonly downBlockTypes: readonly UNetDownBlockType[];
  readonly midBlockType: UNetMidBlockType;
  readonly upBlockTypes: readonly UNetUpBlockType[];
  /** Per down block; up blocks use the reversed list. */
  readonly onlyCrossAttention: readonly boolean[];
  readonly blockOutChannels: readonly number[];
  /** Resnets per down block (up blocks have one more). Per-block lists must be uniform. */
  readonly layersPerBlock: number;
  readonly downsamplePadding: number;
  readonly midBlockScaleFactor: number;
  readonly actFn: 'silu';
  readonly normNumGroups: number;
  readonly normEps: number;
  /** Context width of the cross-attention; a per-down-block list when the config gives one. */
  readonly crossAttentionDim: number | readonly number[];
  /** Transformer blocks per Transformer2DModel, per down block (up blocks reversed, mid uses the last). */
  readonly transformerLayersPerBlock: readonly number[];
  readonly useLinearProjection: boolean;
  readonly upcastAttention: boolean;
  readonly convInKernel: number;
  readonly convOutKernel: number;
  /** Width of the time embedding MLP: time_embedding_dim or block_out_channels[0] * 4. */
  readonly timeEmbeddingDim: number;
  /** `attention_head_dim` exactly as written in config.json (a misnomer in SD-1/2 configs, see numAttentionHeads). */
  readonly attentionHeadDim: number | readonly number[];
  /**
   * RESOLVED number of attention heads per down block (head size = block channels / heads); up block i uses
   * entry n-1-i and the mid block the last one.
   */
  readonly numAttentionHeads: readonly number[];
}

const DEFAULT_DOWN: UNetDownBlockType[] = ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'];
const DEFAULT_UP: UNetUpBlockType[] = ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'];

function blockTypes<T extends string>(reader: ConfigReader, field: string, supported: readonly T[], fallback: readonly T[]): T[] {
  const types = reader.array(field, isString, 'block type names', fallback);
  types.forEach((type, i) => {
    if (!(supported as readonly string[]).includes(type)) {
      throw reader.unsupported(`${field}[${i}]`, type, supported.map((s) => `"${s}"`).join(', '));
    }
  });
  return types as T[];
}

/**
 * THE attention-head quirk, in one place. diffusers 0.19.3 UNet2DConditionModel.__init__ does
 *
 *     num_attention_heads = num_attention_heads or attention_head_dim
 *
 * (https://github.com/huggingface/diffusers/issues/2011#issuecomment-1547958131): `attention_head_dim` of a
 * config is used AS THE NUMBER OF HEADS of each block (an int broadcast to every block), and the blocks compute
 * the head size as channels / heads. So SD-1 (attention_head_dim 8) has 8 heads of 40/80/160 channels, and
 * SD-2 (attention_head_dim [5, 10, 20, 20]) has 5/10/20/20 heads of 64 channels. diffusers 0.19.3 raises if
 * `num_attention_heads` itself is set, and so do we.
 */
function resolveAttentionHeads(reader: ConfigReader, blocks: number): { raw: number | number[]; heads: number[] } {
  const given = reader.raw('num_attention_heads');
  if (given !== undefined && given !== null) {
    throw new ConfigError(
      `${reader.path}: field 'num_attention_heads' = ${showValue(given)} is not supported (diffusers 0.19.3 rejects it; the number of heads is given by 'attention_head_dim')`,
    );
  }
  const heads = reader.perBlock('attention_head_dim', isPositiveInt, 'a positive integer', 8, blocks);
  const raw = reader.raw('attention_head_dim');
  return { raw: Array.isArray(raw) ? heads : heads[0]!, heads };
}

export function parseUNetConfig(json: unknown, path: string): UNetConfig {
  const r = ConfigReader.from(json, path);

  // Features of UNet2DConditionModel that the method's models never use: must keep their defaults.
  r.choice('time_embedding_type', ['positional'], 'positional');
  r.choice('resnet_time_scale_shift', ['default'], 'default');
  for (const field of [
    'class_embed_type',
    'addition_embed_type',
    'addition_time_embed_dim',
    'num_class_embeds',
    'encoder_hid_dim',
    'encoder_hid_dim_type',
    'time_embedding_act_fn',
    'timestep_post_act',
    'time_cond_proj_dim',
    'cross_attention_norm',
    'projection_class_embeddings_input_dim',
  ]) {
    r.fixed(field, null);
  }
  for (const field of ['dual_cross_attention', 'resnet_skip_time_act', 'class_embeddings_concat']) r.fixed(field, false);
  r.fixed('resnet_out_scale_factor', 1);
  r.nullable('mid_block_only_cross_attention', isBoolean, 'a boolean', null);

  const downBlockTypes = blockTypes(r, 'down_block_types', UNET_DOWN_BLOCK_TYPES, DEFAULT_DOWN);
  const upBlockTypes = blockTypes(r, 'up_block_types', UNET_UP_BLOCK_TYPES, DEFAULT_UP);
  const midRaw = r.raw('mid_block_type');
  if (midRaw === null) throw r.unsupported('mid_block_type', null, '"UNetMidBlock2DCrossAttn"');
  const midBlockType = r.choice('mid_block_type', UNET_MID_BLOCK_TYPES, 'UNetMidBlock2DCrossAttn');
  const n = downBlockTypes.length;
  if (upBlockTypes.length !== n) {
    throw new ConfigError(`${path}: field 'up_block_types' must have as many entries as 'down_block_types' (${n}), got ${upBlockTypes.length}`);
  }
  const blockOutChannels = r.array('block_out_channels', isPositiveInt, 'positive integers', [320, 640, 1280, 1280]);
  if (blockOutChannels.length !== n) {
    throw new ConfigError(`${path}: field 'block_out_channels' must have as many entries as 'down_block_types' (${n}), got ${blockOutChannels.length}`);
  }

  const layers = r.perBlock('layers_per_block', isPositiveInt, 'a positive integer', 2, n);
  if (layers.some((l) => l !== layers[0])) throw r.unsupported('layers_per_block', layers, 'one value for every block');

  const normNumGroups = r.raw('norm_num_groups') === null ? 0 : r.positiveInt('norm_num_groups', 32);
  if (normNumGroups === 0) throw r.unsupported('norm_num_groups', null, 'a positive integer (GroupNorm after the last up block)');
  blockOutChannels.forEach((c, i) => {
    if (c % normNumGroups !== 0) {
      throw new ConfigError(
        `${path}: field 'block_out_channels' = ${showValue(blockOutChannels)}: block ${i} has ${c} channels, not divisible by norm_num_groups ${normNumGroups}`,
      );
    }
  });

  const crossRaw = r.raw('cross_attention_dim');
  const crossList = r.perBlock('cross_attention_dim', isPositiveInt, 'a positive integer', 1280, n);
  const crossAttentionDim: number | number[] = Array.isArray(crossRaw) ? crossList : crossList[0]!;

  const { raw: attentionHeadDim, heads } = resolveAttentionHeads(r, n);
  const hasAttention = (i: number): boolean => downBlockTypes[i] === 'CrossAttnDownBlock2D' || upBlockTypes[n - 1 - i] === 'CrossAttnUpBlock2D';
  for (let i = 0; i < n; i++) {
    if ((hasAttention(i) || i === n - 1) && blockOutChannels[i]! % heads[i]! !== 0) {
      throw new ConfigError(
        `${path}: field 'attention_head_dim' gives ${heads[i]} heads for block ${i} of ${blockOutChannels[i]} channels; the channels must be divisible by the number of heads`,
        { hint: "in diffusers 0.19.3 'attention_head_dim' is the number of heads per block" },
      );
    }
  }

  const convInKernel = r.positiveInt('conv_in_kernel', 3);
  const convOutKernel = r.positiveInt('conv_out_kernel', 3);
  if (convInKernel % 2 === 0) throw r.invalid('conv_in_kernel', 'an odd positive integer', convInKernel);
  if (convOutKernel % 2 === 0) throw r.invalid('conv_out_kernel', 'an odd positive integer', convOutKernel);

  const config: UNetConfig = {
    className: r.nullable('_class_name', isString, 'a string', null),
    sampleSize: r.nullable('sample_size', isPositiveInt, 'a positive integer', null),
    inChannels: r.positiveInt('in_channels', 4),
    outChannels: r.positiveInt('out_channels', 4),
    centerInputSample: r.boolean('center_input_sample', false),
    flipSinToCos: r.boolean('flip_sin_to_cos', true),
    freqShift: r.number('freq_shift', 0),
    downBlockTypes,
    midBlockType,
    upBlockTypes,
    onlyCrossAttention: r.perBlock('only_cross_attention', isBoolean, 'a boolean', false, n),
    blockOutChannels,
    layersPerBlock: layers[0]!,
    downsamplePadding: r.nonNegativeInt('downsample_padding', 1),
    midBlockScaleFactor: r.number('mid_block_scale_factor', 1),
    actFn: r.choice('act_fn', ['silu'], 'silu'),
    normNumGroups,
    normEps: r.positiveNumber('norm_eps', 1e-5),
    crossAttentionDim,
    transformerLayersPerBlock: r.perBlock('transformer_layers_per_block', isPositiveInt, 'a positive integer', 1, n),
    useLinearProjection: r.boolean('use_linear_projection', false),
    upcastAttention: r.boolean('upcast_attention', false),
    convInKernel,
    convOutKernel,
    timeEmbeddingDim: r.nullable('time_embedding_dim', isPositiveInt, 'a positive integer', null) ?? blockOutChannels[0]! * 4,
    attentionHeadDim,
    numAttentionHeads: heads,
  };
  return deepFreeze(config);
}

/** Read and parse `unet/config.json`. */
export function loadUNetConfig(path: string): UNetConfig {
  return parseUNetConfig(loadJsonConfig(path), path);
}
