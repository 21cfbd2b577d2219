/**
 * The slices of a SAM-HQ config each graph builder takes (transformers' `SamHQConfig` keys, camelCased), and the
 * constants of the official `Sam` module that no config file carries.
 *
 * Official code: SysCV/sam-hq `segment_anything/` (build_sam.py, modeling/*.py); names of the weights: transformers'
 * `SamHQModel` (vision_encoder.*, prompt_encoder.*, mask_decoder.*, shared_image_embedding.*).
 */
import type { SamHQConfig, SamHQMaskDecoderConfig, SamHQPromptEncoderConfig, SamHQVisionConfig } from './config.js';

/** The builders' slices: `vision_config` (ImageEncoderViT), `prompt_encoder_config`, `mask_decoder_config` (config.ts). */
export type SamVisionConfig = SamHQVisionConfig;
export type SamPromptEncoderConfig = SamHQPromptEncoderConfig;
export type SamMaskDecoderConfig = SamHQMaskDecoderConfig;

export interface SamModelShapes {
  readonly vision: SamVisionConfig;
  readonly prompt: SamPromptEncoderConfig;
  readonly decoder: SamMaskDecoderConfig;
}

/** The builders' slices of a parsed SamHQConfig. */
export function samModelShapes(config: SamHQConfig): SamModelShapes {
  return { vision: config.vision, prompt: config.promptEncoder, decoder: config.maskDecoder };
}

/** `Sam.pixel_mean` / `Sam.pixel_std` (0..255 units, RGB): constructor defaults, not saved in checkpoints. */
export const SAM_PIXEL_MEAN: readonly number[] = [123.675, 116.28, 103.53];
export const SAM_PIXEL_STD: readonly number[] = [58.395, 57.12, 57.375];
/** `Sam.mask_threshold`. */
export const SAM_MASK_THRESHOLD = 0.0;
/** eps of LayerNorm2d (common.py default), used by the neck, the decoder's upscaling and HQ fusion convs and the mask path. */
export const LAYER_NORM_2D_EPS = 1e-6;
/**
 * eps of the TwoWayTransformer's nn.LayerNorm: torch's default 1e-5 in the official code (transformers' port reads
 * mask_decoder_config.layer_norm_eps, 1e-6, instead; we follow the official code the masks come from).
 */
export const TWO_WAY_LAYER_NORM_EPS = 1e-5;
