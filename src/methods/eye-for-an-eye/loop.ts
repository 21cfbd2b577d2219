/**
 * The Eye-for-an-eye denoising loop (docs/method.md §3-5; quirks 5, 7, 15): three latents [out, style, struct] start
 * from the inverted latents at `skip` (out from the STRUCTURE image), each is stepped with its own inversion noise
 * maps, the processor's mode is chosen from the lagged step counter, and AdaIN pulls the out latent towards the style
 * latent after the DDPM step inside the AdaIN range.
 */
import { AbortError, invalidParameterError } from '../../errors.js';
import type { UNetRunner } from '../../runtime/unet-runner.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { MethodInputs } from '../method.js';
import { adain, maskedAdain } from '../shared/adain.js';
import { Branch, branchBatch, branchContext, branchNoise, initialBranches, stepBranches } from '../shared/branches.js';
import { e4eFeeds, e4eSitesOf, injectionSlots, matchesOf, type Injection } from './controls.js';
import { adainAfterIteration, injectionMode, stepSeenByUnet, type StepRange } from './schedule.js';

export interface E4ELoopOptions {
  numSteps: number;
  skip: number;
  guidanceScale: number;
  featRange: StepRange;
  adainRange: StepRange;
  injection: Injection;
  /** Masks at latent size for AdaIN (absent: plain AdaIN). */
  adainMasks?: { structure: Float32Array; appearance: Float32Array } | undefined;
  /**
   * Self-segmentation (methods/shared/self-segmentation): the UNet call of `iteration` also gets `feeds` (the map
   * recording), and `masks` turns that call's outputs into the AdaIN masks used from this iteration on.
   */
  segmentation?:
    | {
        iteration: number;
        feeds: Readonly<Record<string, Tensor>>;
        masks(outputs: Readonly<Record<string, Tensor>>): { structure: Float32Array; appearance: Float32Array };
      }
    | undefined;
  /** Forced matches per iteration and site (parity mode); undefined: the argmax decides. */
  forcedMatches?: ((iteration: number) => Readonly<Record<string, BigInt64Array>> | undefined) | undefined;
}

export interface TransferTrace {
  timesteps: number[];
  modelSteps: number[];
  /** Per iteration: guided noise [out, style, struct] and latents after the step and AdaIN. */
  noisePred: Float32Array[][];
  latents: Float32Array[][];
  /** Out latent after the DDPM step and before AdaIN, for the iterations with AdaIN. */
  latent0BeforeAdain: Float32Array[];
  adainIterations: number[];
  /** Per processed site, per iteration: the match indices (-2 where no matching ran). */
  matches: Record<string, BigInt64Array[]>;
}

export interface E4ELoopResult {
  /** Final latents [out, style, struct]. */
  latents: Float32Array[];
  trace: TransferTrace;
}

type LoopInputs = Pick<
  MethodInputs,
  'unet' | 'schedule' | 'app' | 'struct' | 'latentDims' | 'embeddings' | 'structureMask' | 'appearanceMask' | 'onStep' | 'signal'
>;

export async function runE4ELoop(inputs: LoopInputs, options: E4ELoopOptions): Promise<E4ELoopResult> {
  const { numSteps, skip } = options;
  if (!(Number.isInteger(skip) && skip >= 0 && skip < numSteps)) throw invalidParameterError('skip', `integer between 0 and ${numSteps - 1}`, skip);
  const unet: UNetRunner = inputs.unet;
  const sites = e4eSitesOf(unet);
  const timesteps = inputs.schedule.timesteps(numSteps).slice(skip);
  const init = initialBranches(inputs.app, inputs.struct, skip);
  let latents = init.latents;
  const guided = options.guidanceScale > 1;
  const slots = injectionSlots(guided);
  const context = branchContext(inputs.embeddings, guided);
  const size = inputs.latentDims.reduce((a, b) => a * b, 1);
  const trace: TransferTrace = { timesteps, modelSteps: [], noisePred: [], latents: [], latent0BeforeAdain: [], adainIterations: [], matches: {} };
  let adainMasks = options.adainMasks;
  const segmentation = options.segmentation;

  for (let i = 0; i < timesteps.length; i++) {
    if (inputs.signal?.aborted === true) throw new AbortError('transfer aborted');
    const t = timesteps[i]!;
    const step = stepSeenByUnet(i);
    const mode = injectionMode(step, options.featRange, options.injection);
    const sample: Tensor<'float32'> = branchBatch(latents, inputs.latentDims, guided);
    const feeds = e4eFeeds(
      {
        mode,
        slots,
        maskStruct: inputs.structureMask,
        maskApp: inputs.appearanceMask,
        forced: mode === 'off' || mode === 'structCopy' ? undefined : options.forcedMatches?.(i),
      },
      sites,
      sample.dims[0]!,
    );
    const recording = segmentation !== undefined && segmentation.iteration === i;
    const result = await unet.call({ sample, timestep: t, encoderHiddenStates: context, feeds: recording ? { ...feeds, ...segmentation.feeds } : feeds });
    if (recording) adainMasks = segmentation.masks(result.outputs);
    const eps = branchNoise(result.noise.data, size, guided, options.guidanceScale);
    latents = stepBranches(latents, eps, init.branches, { schedule: inputs.schedule, timestep: t, numSteps, zIndex: skip + i });
    if (adainAfterIteration(i, options.adainRange)) {
      trace.latent0BeforeAdain.push(latents[Branch.Out]!);
      trace.adainIterations.push(i);
      const masks = adainMasks;
      latents[Branch.Out] =
        masks !== undefined
          ? maskedAdain(latents[Branch.Out]!, latents[Branch.Style]!, masks.structure, masks.appearance, inputs.latentDims)
          : adain(latents[Branch.Out]!, latents[Branch.Style]!, inputs.latentDims);
    }
    trace.modelSteps.push(step);
    trace.noisePred.push(eps);
    trace.latents.push(latents.map((l) => Float32Array.from(l)));
    for (const [site, idx] of Object.entries(matchesOf(result.outputs, sites))) (trace.matches[site] ??= []).push(idx);
    inputs.onStep?.(i + 1, timesteps.length, latents[Branch.Out]);
  }
  return { latents, trace };
}
