/**
 * Cross-Image Attention (Alaluf et al., SIGGRAPH 2024) as a method of the pipeline: its UNet variant (FreeU, the
 * K/V-swap processor in the decoder's self-attention, map recording for self-segmentation) and its run from the
 * inverted latents (docs/method.md, "Cross-Image Attention").
 */
import type { UNetConfig } from '../../config/unet-config.js';
import { InvalidParameterError } from '../../errors.js';
import type { AttentionSite, ProcessorPlan } from '../../models/unet/attention-processor.js';
import type { UNetVariant } from '../../runtime/stable-diffusion.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { MethodInputs, MethodOutput, TransferMethod } from '../method.js';
import { downMask } from '../shared/masks.js';
import { runCIALoop, type AdainMaskSource, type LatentMasks, type RecordedMaps } from './loop.js';
import { crossImageAttentionProcessor, type CIASiteRoles } from './processor.js';

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

/**
 * The self-segmentation maps the reference's Segmentor keeps (CIA quirk 7), by its names, as module paths: the LAST
 * self-attention at levels 0 and 1 and the LAST cross-attention at levels 1 and 2 of the UNet (in the up blocks).
 */
export interface SegmentationSites {
  readonly self64: string;
  readonly self32: string;
  readonly cross64: string;
  readonly cross32: string;
}

/** Up-block index of a level, if that up block has attention. */
function upBlockOfLevel(config: UNetConfig, level: number): number | undefined {
  const i = config.upBlockTypes.length - 1 - level;
  return config.upBlockTypes[i] === 'CrossAttnUpBlock2D' ? i : undefined;
}

function lastAttention(config: UNetConfig, level: number, kind: 'attn1' | 'attn2'): string {
  const i = upBlockOfLevel(config, level);
  if (i === undefined)
    throw new InvalidParameterError(`cia: the UNet has no cross-attention up block at resolution level ${level} (self-segmentation needs one)`);
  const transformers = config.transformerLayersPerBlock[level] ?? 1;
  return `up_blocks.${i}.attentions.${config.layersPerBlock}.transformer_blocks.${transformers - 1}.${kind}`;
}

export function segmentationSites(config: UNetConfig): SegmentationSites {
  return {
    self64: lastAttention(config, 0, 'attn1'),
    self32: lastAttention(config, 1, 'attn1'),
    cross64: lastAttention(config, 1, 'attn2'),
    cross32: lastAttention(config, 2, 'attn2'),
  };
}

/** Swap sites: every up-block self-attention at level 0 or 1 (the reference's 64**2 / 32**2 token maps). */
export function isSwapSite(site: Pick<AttentionSite, 'kind' | 'block' | 'level'>): boolean {
  return site.kind === 'self' && site.block === 'up' && site.level <= 1;
}

/** The segmentation sites of a built UNet: the last site of each kind and level in execution order. */
export function segmentationSitesOf(sites: readonly AttentionSite[]): SegmentationSites {
  const last = (kind: 'self' | 'cross', level: number): string => {
    const found = sites.filter((s) => s.kind === kind && s.level === level).at(-1);
    if (found === undefined)
      throw new InvalidParameterError(`cia: the UNet has no ${kind}-attention at resolution level ${level} (self-segmentation needs one)`);
    return found.modulePath;
  };
  return { self64: last('self', 0), self32: last('self', 1), cross64: last('cross', 1), cross32: last('cross', 2) };
}

export interface CIAVariantOptions {
  /** Record the self-segmentation maps (masked AdaIN with self-segmentation). */
  readonly record: boolean;
  /** Swap sites whose out-row attention maps (before / after the contrast) become graph outputs (golden parity). */
  readonly probeSites?: readonly string[] | undefined;
}

export function ciaProcessorPlan(config: UNetConfig, options: CIAVariantOptions): ProcessorPlan {
  const recording = options.record ? Object.values(segmentationSites(config)) : [];
  const probes = options.probeSites ?? [];
  return {
    choose: (site) => {
      const roles: CIASiteRoles = { swap: isSwapSite(site), record: recording.includes(site.modulePath), probe: probes.includes(site.modulePath) };
      return roles.swap || roles.record ? crossImageAttentionProcessor(site, roles) : undefined;
    },
    required: [...recording, ...probes],
  };
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
export function swapSitesOf(unet: MethodInputs['unet']): { modulePath: string; level: number }[] {
  return unet.info.processed.map((p) => unet.site(p)).filter(isSwapSite);
}

/**
 * Self-segmentation: from the recorded maps, the structure and appearance masks at latent size. Provided by
 * methods/shared/self-segmentation (set by `useSelfSegmentation`); absent until then.
 */
export type SelfSegmenter = (maps: RecordedMaps, sites: SegmentationSites, options: { prompt: string; objectNoun: string }) => LatentMasks;

let selfSegmenter: SelfSegmenter | undefined;

/** Installs the self-segmentation the method uses for its masks. */
export function useSelfSegmentation(segmenter: SelfSegmenter): void {
  selfSegmenter = segmenter;
}

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
        { hint: 'give --structure-mask / --appearance-mask, check that the domain word is in the prompt, or run with plain AdaIN (--no-masked-adain)' },
      );
    }
  }
  return masks;
}

/** Where masked AdaIN's masks come from: the user's masks, else self-segmentation, or none (plain AdaIN). */
export function maskSource(inputs: MethodInputs, options: CIAOptions): AdainMaskSource {
  if (!options.maskedAdain) return { kind: 'none' };
  const [, h, w] = inputs.latentDims;
  const { structureMask, appearanceMask } = inputs;
  if (structureMask !== undefined || appearanceMask !== undefined) {
    const like = (structureMask ?? appearanceMask)!;
    const down = (m: Tensor<'float32'> | undefined): Float32Array =>
      downMask(m ?? { dtype: 'float32', dims: like.dims, data: new Float32Array(like.data.length).fill(1) }, h, w);
    return { kind: 'given', masks: checkMasks({ structure: down(structureMask), appearance: down(appearanceMask) }, 'the given mask images') };
  }
  const segment = selfSegmenter;
  if (segment === undefined) {
    throw new InvalidParameterError('cia: masked AdaIN needs masks and no self-segmentation is available', {
      hint: 'give --structure-mask / --appearance-mask, or run with plain AdaIN (--no-masked-adain)',
    });
  }
  const sites = segmentationSitesOf(inputs.unet.sites);
  return {
    kind: 'recorded',
    sites: Object.values(sites),
    segment: (maps) => checkMasks(segment(maps, sites, { prompt: options.prompt, objectNoun: options.domain }), 'self-segmentation'),
  };
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
    const range = (r: readonly [number, number]): { start: number; end: number } => ({ start: r[0], end: r[1] });
    const { latents } = await runCIALoop(inputs, {
      numSteps: options.numSteps,
      skip: options.skip,
      ranges: { range32: range(options.crossAttn32Range), range64: range(options.crossAttn64Range) },
      adainRange: range(options.adainRange),
      swapGuidanceScale: options.swapGuidanceScale,
      contrastStrength: options.contrastStrength,
      swapSites: swapSitesOf(inputs.unet),
      masks: maskSource(inputs, options),
    });
    return { latents, correspondence: undefined };
  },
};
