/**
 * Cross-Image Attention (Alaluf et al., SIGGRAPH 2024) as a method of the pipeline: its UNet variant (FreeU, the
 * K/V-swap processor in the decoder's self-attention, map recording for self-segmentation) and its run from the
 * inverted latents (docs/method.md, "Cross-Image Attention").
 */
import type { UNetConfig } from '../../config/unet-config.js';
import { InvalidParameterError } from '../../errors.js';
import type { AttentionSite, ProcessorPlan } from '../../models/unet/attention-processor.js';
import type { UNetVariant } from '../../runtime/stable-diffusion.js';
import type { UNetRunner } from '../../runtime/unet-runner.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { LatentMask, MethodInputs, MethodOutput, TransferMethod } from '../method.js';
import { Branch } from '../shared/branches.js';
import { downMask } from '../shared/masks.js';
import { segmentationCall, withSegmentationMaps, type SegmentationMasks } from '../shared/self-segmentation/index.js';
import { runCIALoop, type AdainMaskSource, type LatentMasks } from './loop.js';
import { crossImageAttentionProcessor } from './processor.js';

export interface CIAOptions {
  readonly numSteps: number;
  readonly skip: number;
  /** Must be 1: the reference's transfer runs without classifier-free guidance (CIA quirk 1). */
  readonly guidanceScale: number;
  /** Swap ranges [start, end) in truncated-schedule steps: SD 32x32 (level 1) and 64x64 (level 0) self-attention. */
  readonly crossAttn32Range: readonly [number, number];
  readonly crossAttn64Range: readonly [number, number];
  /** AdaIN steps [start, end) (the masks are computed at start, from maps recorded at start - 1). */
  readonly adainRange: readonly [number, number];
  readonly swapGuidanceScale: number;
  readonly contrastStrength: number;
  /** Masked AdaIN (the reference's use_masked_adain); false: plain AdaIN. */
  readonly maskedAdain: boolean;
  readonly prompt: string;
  /** The object noun self-segmentation looks for (the reference's object_noun; default the domain). */
  readonly domain: string;
}

/** Swap sites: every up-block self-attention at level 0 or 1 (the reference's 64**2 / 32**2 token maps). */
export function isSwapSite(site: Pick<AttentionSite, 'kind' | 'block' | 'level'>): boolean {
  return site.kind === 'self' && site.block === 'up' && site.level <= 1;
}

export interface CIAVariantOptions {
  /** Record the self-segmentation maps (masked AdaIN with self-segmentation; methods/shared/self-segmentation). */
  readonly record: boolean;
  /** Swap sites whose out-row attention maps (before / after the contrast) become graph outputs (golden parity). */
  readonly probeSites?: readonly string[] | undefined;
}

export function ciaProcessorPlan(config: UNetConfig, options: CIAVariantOptions): ProcessorPlan {
  const probes = options.probeSites ?? [];
  const plan: ProcessorPlan = {
    choose: (site) => (isSwapSite(site) ? crossImageAttentionProcessor(site, { probe: probes.includes(site.modulePath) }) : undefined),
    required: probes,
  };
  return options.record ? withSegmentationMaps(plan, config) : plan;
}

export function ciaUNetVariant(config: UNetConfig, options: CIAVariantOptions): UNetVariant {
  return {
    freeu: true,
    processors: {
      name: 'cia',
      key: { method: 'cross-image-attention', record: options.record, probes: options.probeSites ?? [] },
      plan: ciaProcessorPlan(config, options),
    },
  };
}

/** The swap sites of a built UNet, with their levels. */
export function swapSitesOf(unet: UNetRunner): { modulePath: string; level: number }[] {
  return unet.info.processed.map((p) => unet.site(p)).filter(isSwapSite);
}

/**
 * Self-segmentation on the recording call: the style and struct rows (conditioned on the prompt: the transfer has
 * no unconditional rows); the *_64 masks at latent size; `onMasks` sees them with the time clustering took.
 */
export function segmentationSource(
  latent: { height: number; width: number },
  options: { prompt: string; objectNoun: string },
  onMasks: (m: SegmentationMasks) => void = () => {},
): AdainMaskSource {
  const call = segmentationCall({ rows: { style: Branch.Style, struct: Branch.Struct }, latent, prompt: options.prompt, objectNouns: [options.objectNoun] });
  return {
    kind: 'recorded',
    feeds: call.feeds,
    segment: (outputs) => {
      let masks: SegmentationMasks;
      try {
        masks = call.masks(outputs);
      } catch (e) {
        if (!(e instanceof InvalidParameterError)) throw e;
        // the reference's masked AdaIN turns an empty mask into NaN (CIA quirk 10): say how to get out
        throw new InvalidParameterError(e.message, { hint: EMPTY_MASK_HINT, ...(e.parameter === undefined ? {} : { parameter: e.parameter }) });
      }
      onMasks(masks);
      return masks;
    },
  };
}

const EMPTY_MASK_HINT = 'give --structure-mask / --appearance-mask, check that the domain word is in the prompt, or run with plain AdaIN (--no-masked-adain)';

function checkMasks(masks: LatentMasks, origin: string): LatentMasks {
  for (const [name, m] of [
    ['structure', masks.structure],
    ['appearance', masks.appearance],
  ] as const) {
    let ones = 0;
    for (const v of m) if (v === 1) ones++;
    if (ones < 2) {
      throw new InvalidParameterError(
        `cia: the ${name} mask from ${origin} has ${ones} pixel(s) equal to 1; masked AdaIN needs at least 2 (the reference turns the result into NaN here, CIA quirk 10)`,
        { hint: EMPTY_MASK_HINT },
      );
    }
  }
  return masks;
}

/** Where masked AdaIN's masks come from: the user's masks, else self-segmentation; none with maskedAdain false. */
export function maskSource(inputs: MethodInputs, options: CIAOptions, onMasks?: (m: SegmentationMasks) => void): AdainMaskSource {
  if (!options.maskedAdain) return { kind: 'none' };
  const [, h, w] = inputs.latentDims;
  const { structureMask, appearanceMask } = inputs;
  if (structureMask !== undefined || appearanceMask !== undefined) {
    const like = (structureMask ?? appearanceMask)!;
    const down = (m: Tensor<'float32'> | undefined): Float32Array =>
      downMask(m ?? { dtype: 'float32', dims: like.dims, data: new Float32Array(like.data.length).fill(1) }, h, w);
    return { kind: 'given', masks: checkMasks({ structure: down(structureMask), appearance: down(appearanceMask) }, 'the given mask images') };
  }
  return segmentationSource({ height: h, width: w }, { prompt: options.prompt, objectNoun: options.domain }, onMasks);
}

function checkGuidance(options: CIAOptions): void {
  if (options.guidanceScale !== 1) {
    throw new InvalidParameterError(
      `cia: guidanceScale must be 1 (got ${options.guidanceScale}): Cross-Image Attention runs its transfer without classifier-free guidance (the reference hard-codes guidance_scale=1.0); its guidance is swapGuidanceScale`,
    );
  }
}

export const crossImageAttention: TransferMethod<CIAOptions> = {
  name: 'cia',
  unet: (config, options) => ciaUNetVariant(config, { record: options.maskedAdain }),
  async run(inputs: MethodInputs, options: CIAOptions): Promise<MethodOutput> {
    checkGuidance(options);
    let segmented: SegmentationMasks | undefined;
    const masks = maskSource(inputs, options, (m) => (segmented = m));
    const range = (r: readonly [number, number]): { start: number; end: number } => ({ start: r[0], end: r[1] });
    const { latents } = await runCIALoop(inputs, {
      numSteps: options.numSteps,
      skip: options.skip,
      ranges: { range32: range(options.crossAttn32Range), range64: range(options.crossAttn64Range) },
      adainRange: range(options.adainRange),
      swapGuidanceScale: options.swapGuidanceScale,
      contrastStrength: options.contrastStrength,
      swapSites: swapSitesOf(inputs.unet),
      masks,
    });
    if (segmented === undefined) return { latents, correspondence: undefined };
    const [, height, width] = inputs.latentDims;
    const latentMask = (m: Float32Array): LatentMask => ({ data: Uint8Array.from(m, (v) => (v === 1 ? 1 : 0)), height, width });
    return {
      latents,
      correspondence: undefined,
      masks: { structure: latentMask(segmented.structure), appearance: latentMask(segmented.appearance) },
      timings: { 'self-segmentation': segmented.seconds },
    };
  },
};
