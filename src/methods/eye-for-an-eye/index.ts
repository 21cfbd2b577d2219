/**
 * Eye-for-an-eye (Go et al., 2024) as a method of the pipeline: its UNet variant (FreeU, the feature-injection
 * processor at the chosen attn1 sites), and its run from the inverted latents (docs/method.md §3-5).
 */
import type { UNetConfig } from '../../config/unet-config.js';
import { InvalidParameterError } from '../../errors.js';
import { tokenMapSize, type AttentionSite, type ProcessorPlan } from '../../models/unet/attention-processor.js';
import type { UNetVariant } from '../../runtime/stable-diffusion.js';
import type { UNetRunner } from '../../runtime/unet-runner.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Correspondence, MethodInputs, MethodOutput, TransferMethod } from '../method.js';
import { batchRow, Branch } from '../shared/branches.js';
import { downMask } from '../shared/masks.js';
import { segmentationCall, withSegmentationMaps, type SegmentationMasks } from '../shared/self-segmentation/index.js';
import { e4eSitesOf, type Injection } from './controls.js';
import { runE4ELoop, type E4ELoopOptions, type TransferTrace } from './loop.js';
import { adainAfterIteration } from './schedule.js';
import { featureInjectionProcessor } from './processor.js';

export interface E4EOptions {
  readonly numSteps: number;
  readonly skip: number;
  readonly guidanceScale: number;
  /** Feature-injection and AdaIN steps [start, end) in truncated-schedule steps (docs/method.md quirk 5). */
  readonly featRange: readonly [number, number];
  readonly adainRange: readonly [number, number];
  readonly injection: Injection;
  /** attn1 module paths where the method acts; default: every attn1 of the two finest up blocks with attention. */
  readonly hookSites?: readonly string[] | undefined;
  /**
   * Correspondences from elsewhere: for transfer iteration `iteration` and processed attn1 `site`, the appearance
   * token each structure token takes (row-major over the site's token map; < 0 keeps the token); undefined lets
   * the cosine argmax decide.
   */
  readonly forcedMatches?: ((iteration: number, site: string) => BigInt64Array | undefined) | undefined;
  /**
   * 'self-segmentation' (an extension; the official code crashes on this path, docs/method.md §7a): masked AdaIN
   * with masks clustered from the attention maps of the first AdaIN iteration's UNet call (cond rows of the
   * appearance and structure), scored against the domain word in the prompt. 'given' / 'sam' (default): the masks
   * the pipeline passes in (mask files, SAM-HQ), if any.
   */
  readonly masks?: 'given' | 'sam' | 'self-segmentation' | undefined;
  /** The prompt and object word, for self-segmentation's cluster-to-noun scoring. */
  readonly prompt?: string | undefined;
  readonly domain?: string | undefined;
}

/** The up blocks of the default sites: the two highest-resolution ones with attention (SD: up_blocks.2 and 3). */
function defaultUpBlocks(config: UNetConfig): number[] {
  return config.upBlockTypes.flatMap((type, i) => (type === 'CrossAttnUpBlock2D' ? [i] : [])).slice(-2);
}

/** The processor plan: the given sites, or every self-attention of the default up blocks. */
export function e4eProcessorPlan(config: UNetConfig, hookSites?: readonly string[]): ProcessorPlan {
  const upBlocks = defaultUpBlocks(config);
  const chosen = (site: AttentionSite): boolean =>
    hookSites !== undefined ? hookSites.includes(site.modulePath) : site.kind === 'self' && site.block === 'up' && upBlocks.includes(site.blockIndex);
  return {
    choose: (site) => (chosen(site) && site.kind === 'self' ? featureInjectionProcessor(site.modulePath) : undefined),
    ...(hookSites === undefined ? {} : { required: hookSites }),
  };
}

export function e4eUNetVariant(config: UNetConfig, hookSites?: readonly string[], selfSegmentation = false): UNetVariant {
  const plan = e4eProcessorPlan(config, hookSites);
  const key = { method: 'eye-for-an-eye', sites: hookSites ?? 'default' };
  if (selfSegmentation)
    return { freeu: true, processors: { name: 'e4e-seg', key: { ...key, selfSegmentation: true }, plan: withSegmentationMaps(plan, config) } };
  return { freeu: true, processors: { name: 'e4e', key, plan } };
}

/** The loop's self-segmentation step: recorded at the first AdaIN iteration (none when AdaIN never runs). */
function segmentationStep(
  options: E4EOptions,
  latent: { height: number; width: number },
  onMasks: (m: SegmentationMasks) => void,
): E4ELoopOptions['segmentation'] {
  if (options.masks !== 'self-segmentation') return undefined;
  const adainRange = { start: options.adainRange[0], end: options.adainRange[1] };
  const iterations = options.numSteps - options.skip;
  const iteration = Array.from({ length: iterations }, (_, i) => i).find((i) => adainAfterIteration(i, adainRange));
  if (iteration === undefined) return undefined;
  if (options.prompt === undefined || options.domain === undefined) {
    throw new InvalidParameterError("masks 'self-segmentation' needs the prompt and the domain (the object word the clusters are scored against)");
  }
  const guided = options.guidanceScale > 1;
  const call = segmentationCall({
    rows: { style: batchRow(Branch.Style, 'cond', guided), struct: batchRow(Branch.Struct, 'cond', guided) },
    latent,
    prompt: options.prompt,
    objectNouns: [options.domain],
  });
  return {
    iteration,
    feeds: call.feeds,
    masks: (outputs) => {
      const masks = call.masks(outputs);
      onMasks(masks);
      return masks;
    },
  };
}

/** Adapts the user's per-site callback to the loop's per-iteration record, checking each site's token count. */
function forcedFor(
  source: NonNullable<E4EOptions['forcedMatches']>,
  unet: UNetRunner,
  latent: { height: number; width: number },
): (iteration: number) => Record<string, BigInt64Array> | undefined {
  return (iteration) => {
    const forced: Record<string, BigInt64Array> = {};
    for (const site of e4eSitesOf(unet)) {
      const m = source(iteration, site);
      if (m === undefined) continue;
      const map = tokenMapSize(unet.site(site), latent);
      if (m.length !== map.height * map.width) {
        throw new InvalidParameterError(
          `forcedMatches(${iteration}, '${site}') gave ${m.length} indices; that layer has ${map.height * map.width} tokens (${map.height}x${map.width})`,
        );
      }
      forced[site] = m;
    }
    return Object.keys(forced).length > 0 ? forced : undefined;
  };
}

/** Matches of the finest processed layer at the last iteration that ran the matching. */
export function lastCorrespondence(trace: TransferTrace, unet: UNetRunner, latent: { height: number; width: number }): Correspondence | undefined {
  const sites = e4eSitesOf(unet).map((p) => unet.site(p));
  const finest = sites.reduce<AttentionSite | undefined>((best, s) => (best === undefined || s.level <= best.level ? s : best), undefined);
  if (finest === undefined) return undefined;
  const rows = trace.matches[finest.modulePath] ?? [];
  for (let i = rows.length - 1; i >= 0; i--) {
    const indices = rows[i]!;
    if (indices.some((v) => v !== -2n)) return { site: finest.modulePath, iteration: i, ...tokenMapSize(finest, latent), indices };
  }
  return undefined;
}

export const eyeForAnEye: TransferMethod<E4EOptions> = {
  name: 'eye-for-an-eye',
  unet: (config, options) => e4eUNetVariant(config, options.hookSites, options.masks === 'self-segmentation'),
  async run(inputs: MethodInputs, options: E4EOptions): Promise<MethodOutput> {
    const [, lh, lw] = inputs.latentDims;
    const latent = { height: lh, width: lw };
    const { structureMask, appearanceMask } = inputs;
    // One mask alone: the other image is taken whole (all ones), and AdaIN is masked; no masks: plain AdaIN.
    const anyMask = structureMask ?? appearanceMask;
    const down = (mask: Tensor<'float32'> | undefined, like: Tensor<'float32'>): Float32Array =>
      downMask(mask ?? { dtype: 'float32', dims: like.dims, data: new Float32Array(like.data.length).fill(1) }, lh, lw);
    const adainMasks = anyMask === undefined ? undefined : { structure: down(structureMask, anyMask), appearance: down(appearanceMask, anyMask) };
    let segmented: SegmentationMasks | undefined;
    const segmentation = segmentationStep(options, latent, (m) => (segmented = m));
    if (segmentation !== undefined && anyMask !== undefined) throw new InvalidParameterError("masks 'self-segmentation' cannot be combined with given masks");
    const { latents, trace } = await runE4ELoop(inputs, {
      numSteps: options.numSteps,
      skip: options.skip,
      guidanceScale: options.guidanceScale,
      featRange: { start: options.featRange[0], end: options.featRange[1] },
      adainRange: { start: options.adainRange[0], end: options.adainRange[1] },
      injection: options.injection,
      adainMasks,
      forcedMatches: options.forcedMatches === undefined ? undefined : forcedFor(options.forcedMatches, inputs.unet, latent),
      segmentation,
    });
    const masks = segmented === undefined ? undefined : { structure: segmented.result.masks.structure, appearance: segmented.result.masks.appearance };
    const extra = segmented === undefined ? {} : { masks, timings: { 'self-segmentation': segmented.seconds } };
    return { latents, correspondence: lastCorrespondence(trace, inputs.unet, latent), ...extra };
  },
};
