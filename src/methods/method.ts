/**
 * What every appearance-transfer method provides to the pipeline (src/methods/<method>/index.ts). The pipeline owns
 * what methods share: loading the images and masks, the VAE, the text encoder and the DDPM inversion of both
 * images (run with the method's UNet, every processor neutral); a method owns its attention processors (the UNet
 * variant), its controls and schedule, and the denoising loop from the inverted latents.
 */
import type { UNetConfig } from '../config/unet-config.js';
import type { DdimSchedule } from '../diffusion/ddim-schedule.js';
import type { TokenMatches } from '../io/image.js';
import type { UNetVariant } from '../runtime/stable-diffusion.js';
import type { UNetRunner } from '../runtime/unet-runner.js';
import type { Tensor } from '../tensor/tensor.js';
import type { LatentDims } from './shared/adain.js';

/** One image's inversion: N + 1 latents (xts) and N noise maps (zs). */
export interface BranchInversion {
  xts: readonly Float32Array[];
  zs: readonly Float32Array[];
}

export interface MethodInputs {
  readonly unet: UNetRunner;
  readonly schedule: DdimSchedule;
  readonly app: BranchInversion;
  readonly struct: BranchInversion;
  readonly latentDims: LatentDims;
  /** Text embeddings [1, T, D] of the empty prompt and of the prompt. */
  readonly embeddings: { readonly uncond: Tensor<'float32'>; readonly cond: Tensor<'float32'> };
  /** Object masks [H, W] at the working size (absent: none given). */
  readonly structureMask?: Tensor<'float32'> | undefined;
  readonly appearanceMask?: Tensor<'float32'> | undefined;
  /**
   * After each denoising step; `latent` is the result branch's latent after the step ([C, h, w] row-major, not to be
   * kept), for previews (a method that does not give it has no previews).
   */
  readonly onStep?: ((done: number, total: number, latent?: Float32Array) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Where the result's tokens took their features from, at one layer and iteration. */
export interface Correspondence extends TokenMatches {
  site: string;
  iteration: number;
}

export interface MethodOutput {
  /** Final latents [out, style, struct]. */
  latents: Float32Array[];
  correspondence: Correspondence | undefined;
  /** Masks the method computed itself (self-segmentation), 0/1 at the latent size. */
  masks?: { readonly structure: LatentMask; readonly appearance: LatentMask } | undefined;
  /** Seconds of method-internal phases worth reporting (e.g. 'self-segmentation'). */
  timings?: Readonly<Record<string, number>> | undefined;
}

/** A 0/1 mask over the latent map. */
export interface LatentMask {
  readonly data: Uint8Array;
  readonly height: number;
  readonly width: number;
}

export interface TransferMethod<Options> {
  /** The name users select it by (`--method`). */
  readonly name: string;
  /** The UNet graph the method runs on (the inversion uses it too, processors neutral). */
  unet(config: UNetConfig, options: Options): UNetVariant;
  run(inputs: MethodInputs, options: Options): Promise<MethodOutput>;
}
