/**
 * Official SysCV/sam-hq state_dict names <-> Hugging Face SamHQModel names, as transformers'
 * convert_samhq_to_hf.py renames them (KEYS_TO_MODIFY_MAPPING), written as whole-name templates in both directions
 * so the mapping is provably invertible. The MLPs (`layers.0..d-1` -> `proj_in`, `layers.0..d-3`, `proj_out`)
 * depend on each MLP's depth, which is read from the set of names. A name no rule covers is an error: nothing is
 * guessed.
 */
import { WeightMissingError } from '../../errors.js';

/** Placeholders: {i} a block index, {p} a parameter name (weight, bias), {rest} any tail. Same order on both sides. */
const RULES: readonly (readonly [official: string, hf: string])[] = [
  ['image_encoder.pos_embed', 'vision_encoder.pos_embed'],
  ['image_encoder.patch_embed.proj.{p}', 'vision_encoder.patch_embed.projection.{p}'],
  ['image_encoder.blocks.{i}.norm1.{p}', 'vision_encoder.layers.{i}.layer_norm1.{p}'],
  ['image_encoder.blocks.{i}.norm2.{p}', 'vision_encoder.layers.{i}.layer_norm2.{p}'],
  ['image_encoder.blocks.{i}.attn.{rest}', 'vision_encoder.layers.{i}.attn.{rest}'],
  ['image_encoder.blocks.{i}.mlp.{rest}', 'vision_encoder.layers.{i}.mlp.{rest}'],
  ['image_encoder.neck.0.{p}', 'vision_encoder.neck.conv1.{p}'],
  ['image_encoder.neck.1.{p}', 'vision_encoder.neck.layer_norm1.{p}'],
  ['image_encoder.neck.2.{p}', 'vision_encoder.neck.conv2.{p}'],
  ['image_encoder.neck.3.{p}', 'vision_encoder.neck.layer_norm2.{p}'],
  ['prompt_encoder.pe_layer.positional_encoding_gaussian_matrix', 'shared_image_embedding.positional_embedding'],
  ['prompt_encoder.point_embeddings.{i}.{p}', 'prompt_encoder.point_embed.{i}.{p}'],
  ['prompt_encoder.not_a_point_embed.{p}', 'prompt_encoder.not_a_point_embed.{p}'],
  ['prompt_encoder.no_mask_embed.{p}', 'prompt_encoder.no_mask_embed.{p}'],
  ['prompt_encoder.mask_downscaling.0.{p}', 'prompt_encoder.mask_embed.conv1.{p}'],
  ['prompt_encoder.mask_downscaling.1.{p}', 'prompt_encoder.mask_embed.layer_norm1.{p}'],
  ['prompt_encoder.mask_downscaling.3.{p}', 'prompt_encoder.mask_embed.conv2.{p}'],
  ['prompt_encoder.mask_downscaling.4.{p}', 'prompt_encoder.mask_embed.layer_norm2.{p}'],
  ['prompt_encoder.mask_downscaling.6.{p}', 'prompt_encoder.mask_embed.conv3.{p}'],
  ['mask_decoder.iou_token.{p}', 'mask_decoder.iou_token.{p}'],
  ['mask_decoder.mask_tokens.{p}', 'mask_decoder.mask_tokens.{p}'],
  ['mask_decoder.hf_token.{p}', 'mask_decoder.hq_token.{p}'],
  ['mask_decoder.transformer.layers.{i}.norm1.{p}', 'mask_decoder.transformer.layers.{i}.layer_norm1.{p}'],
  ['mask_decoder.transformer.layers.{i}.norm2.{p}', 'mask_decoder.transformer.layers.{i}.layer_norm2.{p}'],
  ['mask_decoder.transformer.layers.{i}.norm3.{p}', 'mask_decoder.transformer.layers.{i}.layer_norm3.{p}'],
  ['mask_decoder.transformer.layers.{i}.norm4.{p}', 'mask_decoder.transformer.layers.{i}.layer_norm4.{p}'],
  ['mask_decoder.transformer.layers.{i}.self_attn.{rest}', 'mask_decoder.transformer.layers.{i}.self_attn.{rest}'],
  ['mask_decoder.transformer.layers.{i}.cross_attn_token_to_image.{rest}', 'mask_decoder.transformer.layers.{i}.cross_attn_token_to_image.{rest}'],
  ['mask_decoder.transformer.layers.{i}.cross_attn_image_to_token.{rest}', 'mask_decoder.transformer.layers.{i}.cross_attn_image_to_token.{rest}'],
  ['mask_decoder.transformer.layers.{i}.mlp.{rest}', 'mask_decoder.transformer.layers.{i}.mlp.{rest}'],
  ['mask_decoder.transformer.final_attn_token_to_image.{rest}', 'mask_decoder.transformer.final_attn_token_to_image.{rest}'],
  ['mask_decoder.transformer.norm_final_attn.{p}', 'mask_decoder.transformer.layer_norm_final_attn.{p}'],
  ['mask_decoder.output_upscaling.0.{p}', 'mask_decoder.upscale_conv1.{p}'],
  ['mask_decoder.output_upscaling.1.{p}', 'mask_decoder.upscale_layer_norm.{p}'],
  ['mask_decoder.output_upscaling.3.{p}', 'mask_decoder.upscale_conv2.{p}'],
  ['mask_decoder.compress_vit_feat.0.{p}', 'mask_decoder.compress_vit_conv1.{p}'],
  ['mask_decoder.compress_vit_feat.1.{p}', 'mask_decoder.compress_vit_norm.{p}'],
  ['mask_decoder.compress_vit_feat.3.{p}', 'mask_decoder.compress_vit_conv2.{p}'],
  ['mask_decoder.embedding_encoder.0.{p}', 'mask_decoder.encoder_conv1.{p}'],
  ['mask_decoder.embedding_encoder.1.{p}', 'mask_decoder.encoder_norm.{p}'],
  ['mask_decoder.embedding_encoder.3.{p}', 'mask_decoder.encoder_conv2.{p}'],
  ['mask_decoder.embedding_maskfeature.0.{p}', 'mask_decoder.mask_conv1.{p}'],
  ['mask_decoder.embedding_maskfeature.1.{p}', 'mask_decoder.mask_norm.{p}'],
  ['mask_decoder.embedding_maskfeature.3.{p}', 'mask_decoder.mask_conv2.{p}'],
];

/** The official MLP modules (segment_anything MLP: `layers.0..depth-1`) and their HF prefixes. */
const MLPS: readonly (readonly [official: string, hf: string])[] = [
  ['mask_decoder.output_hypernetworks_mlps.{i}', 'mask_decoder.output_hypernetworks_mlps.{i}'],
  ['mask_decoder.iou_prediction_head', 'mask_decoder.iou_prediction_head'],
  ['mask_decoder.hf_mlp', 'mask_decoder.hq_mask_mlp'],
];

/** Official buffers the HF model does not have (pixel_mean/std are non-persistent in sam-hq; the HF converter drops them). */
export const OFFICIAL_DROPPED_NAMES: readonly string[] = ['pixel_mean', 'pixel_std'];

const PLACEHOLDER: Readonly<Record<string, string>> = { '{i}': '(\\d+)', '{p}': '([A-Za-z_]+)', '{rest}': '(.+)' };

function compile(template: string, tail = ''): RegExp {
  const body = template.replace(/[.]/g, '\\.').replace(/\{i\}|\{p\}|\{rest\}/g, (m) => PLACEHOLDER[m]!);
  return new RegExp(`^${body}${tail}$`);
}

function fill(template: string, groups: readonly string[]): string {
  let k = 0;
  return template.replace(/\{i\}|\{p\}|\{rest\}/g, () => groups[k++]!);
}

interface Direction {
  rules: readonly (readonly [RegExp, string])[];
  /** [pattern capturing (module groups..., layer part), target prefix template, side] */
  mlps: readonly (readonly [RegExp, string, string])[];
}

const TO_HF: Direction = {
  rules: RULES.map(([o, h]) => [compile(o), h] as const),
  mlps: MLPS.map(([o, h]) => [compile(o, '\\.layers\\.(\\d+)\\.([A-Za-z_]+)'), h, o] as const),
};
const TO_OFFICIAL: Direction = {
  rules: RULES.map(([o, h]) => [compile(h), o] as const),
  mlps: MLPS.map(([o, h]) => [compile(h, '\\.(proj_in|proj_out|layers\\.\\d+)\\.([A-Za-z_]+)'), o, h] as const),
};

function unknown(name: string, where: string): WeightMissingError {
  return new WeightMissingError(`${where}: tensor '${name}' is not a SAM-HQ weight (no official <-> Hugging Face name rule covers it)`, {
    hint: 'is this a SAM-HQ checkpoint (SysCV/sam-hq sam_hq_vit_{b,l,h}.pth or a transformers SamHQModel)?',
  });
}

/** MLP layer part: official index k of depth d <-> proj_in / layers.(k-1) / proj_out. */
function mlpPart(part: string, depth: number, toHf: boolean, name: string, where: string): string {
  if (toHf) {
    const k = Number(part);
    if (depth < 2) throw new WeightMissingError(`${where}: tensor '${name}' belongs to an MLP of ${depth} layer; SAM-HQ MLPs have at least 2`);
    return k === 0 ? 'proj_in' : k === depth - 1 ? 'proj_out' : `layers.${k - 1}`;
  }
  if (part === 'proj_in') return 'layers.0';
  if (part === 'proj_out') return `layers.${depth - 1}`;
  return `layers.${Number(part.slice('layers.'.length)) + 1}`;
}

function mapAll(names: readonly string[], dir: Direction, toHf: boolean, where: string): Map<string, string> {
  // Depth of each MLP instance: official = number of distinct layers.k; HF = hidden layers + proj_in + proj_out.
  const parts = new Map<string, Set<string>>();
  const mlpHits = new Map<string, { prefix: string; groups: string[]; part: string; param: string }>();
  for (const name of names) {
    for (const [re, target] of dir.mlps) {
      const m = re.exec(name);
      if (m === null) continue;
      const groups = m.slice(1, -2);
      const prefix = name.slice(0, name.length - m[m.length - 2]!.length - m[m.length - 1]!.length - 2);
      mlpHits.set(name, { prefix: fill(target, groups), groups, part: m[m.length - 2]!, param: m[m.length - 1]! });
      parts.set(prefix, (parts.get(prefix) ?? new Set()).add(m[m.length - 2]!));
      break;
    }
  }
  const out = new Map<string, string>();
  for (const name of names) {
    const hit = mlpHits.get(name);
    if (hit !== undefined) {
      const own = name.slice(0, name.length - hit.part.length - hit.param.length - 2);
      const seen = parts.get(own)!;
      const depth = toHf ? seen.size : [...seen].filter((p) => p.startsWith('layers.')).length + 2;
      out.set(name, `${hit.prefix}.${mlpPart(hit.part, depth, toHf, name, where)}.${hit.param}`);
      continue;
    }
    const rule = dir.rules.find(([re]) => re.test(name));
    if (rule === undefined) throw unknown(name, where);
    out.set(name, fill(rule[1], rule[0].exec(name)!.slice(1)));
  }
  const seen = new Map<string, string>();
  for (const [from, to] of out) {
    const other = seen.get(to);
    if (other !== undefined) throw new WeightMissingError(`${where}: tensors '${other}' and '${from}' would both be named '${to}'`);
    seen.set(to, from);
  }
  return out;
}

/** official name -> HF name for every name given (OFFICIAL_DROPPED_NAMES must be removed first). `where` names the file. */
export function officialToHfNames(names: readonly string[], where: string): Map<string, string> {
  return mapAll(names, TO_HF, true, where);
}

/** HF name -> official name, the inverse of officialToHfNames over a complete set of names. */
export function hfToOfficialNames(names: readonly string[], where: string): Map<string, string> {
  return mapAll(names, TO_OFFICIAL, false, where);
}
