/**
 * The Cross-Image Attention denoising loop (the reference's pipeline __call__ with run_appearance_transfer's
 * arguments; docs/method.md, CIA quirks 1, 4-7, 10-12): three latents [out, style, struct] from the inverted latents
 * at `skip` (out from the STRUCTURE image), no classifier-free guidance, per iteration a UNet pass with the swap and
 * one without, swap guidance between them, the DDPM step of every branch with its own noise maps, then (the
 * callback) the masks and AdaIN of the out latent towards the style latent.
 *
 * The reference always runs both passes; where no site swaps the two are bit-identical (io.json
 * checks.offstep_bitequal_to_noswap), so one call serves both, and the no-swap pass is skipped where its result is
 * discarded (no guidance, no recording).
 */
import { AbortError, InvalidParameterError, invalidParameterError } from '../../errors.js';
import type { Feeds } from '../../runtime/session.js';
import type { UNetRunner } from '../../runtime/unet-runner.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { MethodInputs } from '../method.js';
import { adain, maskedAdain } from '../shared/adain.js';
import { Branch, branchBatch, branchContext, branchNoise, initialBranches, stepBranches } from '../shared/branches.js';
import { ciaFeeds, NO_SWAP } from './controls.js';
import {
  adainAfterIteration,
  computesMasks,
  kvSource,
  recordsMaps,
  stepSeenByUnet,
  swapGuidanceApplies,
  swapStrengths,
  type StepRange,
  type SwapRanges,
} from './schedule.js';

const f32 = Math.fround;

/** Object masks at latent size (0/1, or fractional from resized user masks). */
export interface LatentMasks {
  readonly structure: Float32Array;
  readonly appearance: Float32Array;
}

/** The outputs of the UNet call that recorded the self-segmentation maps (the no-swap pass, quirk 7). */
export type RecordedOutputs = Readonly<Record<string, Tensor>>;

/**
 * Where masked AdaIN's masks come from: none (plain AdaIN), given (latent size), or recorded: `feeds` are added to
 * the recording call (the no-swap pass of the iteration that sees model.step == adain.start - 1) and `segment`
 * turns its outputs into the masks in the callback of iteration adain.start.
 */
export type AdainMaskSource =
  | { readonly kind: 'none' }
  | { readonly kind: 'given'; readonly masks: LatentMasks }
  | { readonly kind: 'recorded'; readonly feeds: Feeds; readonly segment: (outputs: RecordedOutputs) => LatentMasks };

export interface CIALoopOptions {
  numSteps: number;
  skip: number;
  ranges: SwapRanges;
  adainRange: StepRange;
  swapGuidanceScale: number;
  contrastStrength: number;
  /** The sites with a `cia_kv` input and their resolution level. */
  swapSites: readonly { readonly modulePath: string; readonly level: number }[];
  masks: AdainMaskSource;
  /** Run the no-swap pass wherever a site swaps, also where its result is discarded (a complete trace). */
  alwaysNoSwapPass?: boolean | undefined;
}

export interface CIATrace {
  timesteps: number[];
  modelSteps: number[];
  swapStrengths: number[];
  guidanceApplied: boolean[];
  /** Per iteration, [out, style, struct] each (noisePredNoSwap: [] where that pass was skipped). */
  noisePredSwap: Float32Array[][];
  noisePredNoSwap: Float32Array[][];
  noisePred: Float32Array[][];
  latents: Float32Array[][];
  latent0BeforeAdain: Float32Array[];
  adainIterations: number[];
  /** The masks AdaIN used (absent: none computed / plain AdaIN). */
  masks: LatentMasks | undefined;
}

export interface CIALoopResult {
  latents: Float32Array[];
  trace: CIATrace;
}

type LoopInputs = Pick<MethodInputs, 'unet' | 'schedule' | 'app' | 'struct' | 'latentDims' | 'embeddings' | 'onStep' | 'signal'>;

/** no_swap + s * (swap - no_swap), in float32 with the float64 strength rounded to float32 (quirk 5). */
export function swapGuidance(noSwap: Float32Array, swap: Float32Array, strength: number): Float32Array {
  const s = f32(strength);
  return noSwap.map((n, i) => f32(n + f32(s * f32(swap[i]! - n))));
}

function checkOptions(options: CIALoopOptions): void {
  const { numSteps, skip } = options;
  if (!(Number.isInteger(skip) && skip >= 0 && skip < numSteps)) throw invalidParameterError('skip', `integer between 0 and ${numSteps - 1}`, skip);
  if (options.masks.kind === 'recorded' && options.adainRange.start < 1) {
    throw invalidParameterError('adainRange', '[start, end] with start >= 1 (self-segmentation records its maps at step start - 1)', [
      options.adainRange.start,
      options.adainRange.end,
    ]);
  }
}

/** Per swap site the K/V row of the swap pass. */
function kvOf(options: CIALoopOptions, step: number): Record<string, number> {
  return Object.fromEntries(options.swapSites.map((s) => [s.modulePath, kvSource(s.level, step, options.ranges)]));
}

export async function runCIALoop(inputs: LoopInputs, options: CIALoopOptions): Promise<CIALoopResult> {
  checkOptions(options);
  const { numSteps, skip } = options;
  const unet: UNetRunner = inputs.unet;
  const swapPaths = options.swapSites.map((s) => s.modulePath);
  const timesteps = inputs.schedule.timesteps(numSteps).slice(skip);
  const init = initialBranches(inputs.app, inputs.struct, skip);
  let latents = init.latents;
  const context = branchContext(inputs.embeddings, false);
  const size = inputs.latentDims.reduce((a, b) => a * b, 1);
  const strengths = swapStrengths(options.swapGuidanceScale, timesteps.length);
  const trace: CIATrace = {
    timesteps,
    modelSteps: [],
    swapStrengths: strengths,
    guidanceApplied: [],
    noisePredSwap: [],
    noisePredNoSwap: [],
    noisePred: [],
    latents: [],
    latent0BeforeAdain: [],
    adainIterations: [],
    masks: options.masks.kind === 'given' ? options.masks.masks : undefined,
  };
  let maps: RecordedOutputs | undefined;
  for (let i = 0; i < timesteps.length; i++) {
    if (inputs.signal?.aborted === true) throw new AbortError('transfer aborted');
    const t = timesteps[i]!;
    const step = stepSeenByUnet(i);
    const sample: Tensor<'float32'> = branchBatch(latents, inputs.latentDims, false);
    const batch = sample.dims[0]!;
    const call = async (kv: Record<string, number>, record: boolean): Promise<{ eps: Float32Array[]; outputs: Readonly<Record<string, Tensor>> }> => {
      const extra = record && options.masks.kind === 'recorded' ? options.masks.feeds : {};
      const feeds = { ...ciaFeeds({ kv, contrast: options.contrastStrength }, swapPaths, batch), ...extra };
      const result = await unet.call({ sample, timestep: t, encoderHiddenStates: context, feeds });
      return { eps: branchNoise(result.noise.data, size, false, 1), outputs: result.outputs };
    };
    const kv = kvOf(options, step);
    const anySwap = Object.values(kv).some((r) => r !== NO_SWAP);
    const guided = swapGuidanceApplies(i, options.ranges, options.swapGuidanceScale);
    const record = options.masks.kind === 'recorded' && recordsMaps(i, options.adainRange);
    // The recording of the reference keeps the maps of the LAST call: the no-swap pass.
    const swap = await call(kv, record && !anySwap);
    const noSwap = anySwap ? (guided || record || options.alwaysNoSwapPass === true ? await call({}, record) : undefined) : swap;
    if (record) maps = noSwap!.outputs;
    const eps = guided ? swap.eps.map((s, b) => swapGuidance(noSwap!.eps[b]!, s, strengths[i]!)) : swap.eps;
    latents = stepBranches(latents, eps, init.branches, { schedule: inputs.schedule, timestep: t, numSteps, zIndex: skip + i });
    if (options.masks.kind === 'recorded' && computesMasks(i, options.adainRange)) {
      if (maps === undefined) throw new InvalidParameterError(`cia: no attention maps were recorded before iteration ${i}`);
      trace.masks = options.masks.segment(maps);
    }
    if (adainAfterIteration(i, options.adainRange)) {
      trace.latent0BeforeAdain.push(latents[Branch.Out]!);
      trace.adainIterations.push(i);
      latents[Branch.Out] =
        options.masks.kind === 'none'
          ? adain(latents[Branch.Out]!, latents[Branch.Style]!, inputs.latentDims)
          : maskedAdain(latents[Branch.Out]!, latents[Branch.Style]!, trace.masks!.structure, trace.masks!.appearance, inputs.latentDims);
    }
    trace.modelSteps.push(step);
    trace.guidanceApplied.push(guided);
    trace.noisePredSwap.push(swap.eps);
    trace.noisePredNoSwap.push(noSwap?.eps ?? []);
    trace.noisePred.push(eps);
    trace.latents.push(latents.map((l) => Float32Array.from(l)));
    inputs.onStep?.(i + 1, timesteps.length, latents[Branch.Out]);
  }
  return { latents, trace };
}
