/**
 * The slices of a SAM-HQ config each graph builder takes (transformers' `SamHQConfig` keys, camelCased), and the
 * constants of the official `Sam` module that no config file carries.
 *
 * Official code: SysCV/sam-hq `segment_anything/` (build_sam.py, modeling/*.py); names of the weights: transformers'
 * `SamHQModel` (vision_encoder.*, prompt_encoder.*, mask_decoder.*, shared_image_embedding.*).
 */
import type { SamHQConfig } from './config.js';

/** `vision_config`: the ViT image encoder (ImageEncoderViT). */
export interface SamVisionConfig {
  readonly hiddenSize: number;
  readonly outputChannels: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numChannels: number;
  /** Side of the padded square the encoder takes (1024 for the released models). */
  readonly imageSize: number;
  readonly patchSize: number;
  readonly mlpDim: number;
  readonly layerNormEps: number;
  readonly qkvBias: boolean;
  readonly useAbsPos: boolean;
  readonly useRelPos: boolean;
  /** Window of the windowed-attention blocks (14 for the released models). */
  readonly windowSize: number;
  /** Blocks with global attention; the first one's output is the HQ decoder's intermediate embedding. */
  readonly globalAttnIndexes: readonly number[];
}

/** `prompt_encoder_config`: PromptEncoder (+ the shared random-Fourier PE, transformers' shared_image_embedding). */
export interface SamPromptEncoderConfig {
  readonly hiddenSize: number;
  /** The padded square side (the coordinate frame of prompts after ResizeLongestSide). */
  readonly imageSize: number;
  /** Side of the image embedding grid (imageSize / patchSize). */
  readonly imageEmbeddingSize: number;
  readonly maskInputChannels: number;
  readonly layerNormEps: number;
}

/** `mask_decoder_config`: MaskDecoderHQ with its TwoWayTransformer. */
export interface SamMaskDecoderConfig {
  readonly hiddenSize: number;
  readonly mlpDim: number;
  /** TwoWayTransformer depth. */
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly attentionDownsampleRate: number;
  readonly numMultimaskOutputs: number;
  readonly iouHeadDepth: number;
  readonly iouHeadHiddenDim: number;
  /** Channels of the intermediate ViT embedding (the vision hidden size). */
  readonly vitDim: number;
}

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
