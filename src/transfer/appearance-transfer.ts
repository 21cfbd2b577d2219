/**
 * The Eye-for-an-eye denoising loop (METHOD.md §3-5; golden README quirks 5, 7, 15): three latents
 * [out, style, struct] start from the inverted latents at `skip` (out from the STRUCTURE image), each is stepped with
 * its own inversion noise maps, the UNet's attention rule is chosen from the lagged step counter, and AdaIN pulls the
 * out latent towards the style latent after the DDPM step inside the AdaIN range.
 */
import { AbortError, InvalidParameterError } from '../errors.js';
import type { DdimSchedule } from '../diffusion/ddim-schedule.js';
import { ddpmStep } from '../diffusion/ddpm-step.js';
import { classifierFreeGuidance } from '../diffusion/guidance.js';
import type { E4EControls, UNetCall, UNetResult } from '../runtime/unet-runner.js';
import type { Tensor } from '../tensor/tensor.js';
import { adain, maskedAdain, type LatentDims } from './adain.js';
import { adainAfterIteration, injectionMode, stepSeenByUnet, type StepRange } from './schedule-rules.js';
import { BRANCHES, OFFICIAL_CFG_SLOTS, SINGLE_BATCH_SLOTS, Slot, slotsInput } from './slots.js';

export interface BranchInversion {
  /** N + 1 latents (xts) and N noise maps (zs) of the inversion. */
  xts: readonly Float32Array[];
  zs: readonly Float32Array[];
}

export interface TransferLoopOptions {
  numSteps: number;
  skip: number;
  guidanceScale: number;
  featRange: StepRange;
  adainRange: StepRange;
  /** 'match' = the method; 'vInjection' = the values-only ablation. */
  injection: 'match' | 'vInjection';
  /** Masks at image size for the matching (absent: no mask). */
  maskStruct?: Tensor<'float32'> | undefined;
  maskApp?: Tensor<'float32'> | undefined;
  /** Masks at latent size for AdaIN (absent: plain AdaIN). */
  adainMaskStruct?: Float32Array | undefined;
  adainMaskApp?: Float32Array | undefined;
  /** Forced matches per iteration and site (parity mode; entries < -1 mean "no matching" and are ignored). */
  forcedMatches?: ((iteration: number) => Readonly<Record<string, BigInt64Array>> | undefined) | undefined;
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal | undefined;
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
  /** Per site, per iteration: the match indices (-2 where no matching ran). */
  matches: Record<string, BigInt64Array[]>;
}

export interface TransferResult {
  /** Final latents [out, style, struct]. */
  latents: Float32Array[];
  trace: TransferTrace;
}

function concatRows(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

export async function runTransferLoop(
  unet: (call: UNetCall) => Promise<UNetResult>,
  schedule: DdimSchedule,
  inputs: { app: BranchInversion; struct: BranchInversion; latentDims: LatentDims; embeddings: { uncond: Tensor<'float32'>; cond: Tensor<'float32'> } },
  options: TransferLoopOptions,
): Promise<TransferResult> {
  const { numSteps, skip } = options;
  if (!(Number.isInteger(skip) && skip >= 0 && skip < numSteps)) throw new InvalidParameterError(`Expected integer between 0 and ${numSteps - 1} for skip but received ${skip}`);
  const timesteps = schedule.timesteps(numSteps).slice(skip);
  const branches = [inputs.struct, inputs.app, inputs.struct]; // [out, style, struct] (quirk 15)
  let latents: Float32Array[] = branches.map((b) => Float32Array.from(b.xts[skip]!));
  const guided = options.guidanceScale > 1;
  const batchRows = guided ? 2 * BRANCHES : BRANCHES;
  const slots = slotsInput(guided ? OFFICIAL_CFG_SLOTS : SINGLE_BATCH_SLOTS);
  const [c, h, w] = inputs.latentDims;
  const ctxRows = guided ? [inputs.embeddings.uncond, inputs.embeddings.uncond, inputs.embeddings.uncond, inputs.embeddings.cond, inputs.embeddings.cond, inputs.embeddings.cond]
    : [inputs.embeddings.cond, inputs.embeddings.cond, inputs.embeddings.cond];
  const ctxDims = inputs.embeddings.cond.dims;
  const context: Tensor<'float32'> = { dtype: 'float32', dims: [batchRows, ctxDims[1]!, ctxDims[2]!], data: concatRows(ctxRows.map((t) => t.data)) };
  const trace: TransferTrace = { timesteps, modelSteps: [], noisePred: [], latents: [], latent0BeforeAdain: [], adainIterations: [], matches: {} };

  for (let i = 0; i < timesteps.length; i++) {
    if (options.signal?.aborted === true) throw new AbortError('transfer aborted');
    const t = timesteps[i]!;
    const step = stepSeenByUnet(i);
    const mode = injectionMode(step, options.featRange, options.injection);
    const e4e: E4EControls = {
      mode,
      slots,
      maskStruct: options.maskStruct,
      maskApp: options.maskApp,
      forced: mode === 'off' || mode === 'structCopy' ? undefined : options.forcedMatches?.(i),
    };
    const rows = guided ? [...latents, ...latents] : latents;
    const result = await unet({ sample: { dtype: 'float32', dims: [batchRows, c, h, w], data: concatRows(rows) }, timestep: t, encoderHiddenStates: context, e4e });
    const size = c * h * w;
    const eps = latents.map((_, b) => {
      const condRow = result.noise.data.subarray((guided ? BRANCHES + b : b) * size, (guided ? BRANCHES + b + 1 : b + 1) * size);
      return guided ? classifierFreeGuidance(result.noise.data.subarray(b * size, (b + 1) * size), condRow, options.guidanceScale) : Float32Array.from(condRow);
    });
    const alphaProd = schedule.alphaCumprodAt(t);
    const alphaProdPrev = schedule.alphaCumprodAt(schedule.prevTimestep(t, numSteps));
    latents = latents.map((sample, b) => ddpmStep({ sample, noisePred: eps[b]!, z: branches[b]!.zs[skip + i]!, alphaProd, alphaProdPrev }));
    if (adainAfterIteration(i, options.adainRange)) {
      trace.latent0BeforeAdain.push(latents[Slot.Out]!);
      trace.adainIterations.push(i);
      latents[Slot.Out] = options.adainMaskStruct !== undefined && options.adainMaskApp !== undefined
        ? maskedAdain(latents[Slot.Out]!, latents[Slot.Style]!, options.adainMaskStruct, options.adainMaskApp, inputs.latentDims)
        : adain(latents[Slot.Out]!, latents[Slot.Style]!, inputs.latentDims);
    }
    trace.modelSteps.push(step);
    trace.noisePred.push(eps);
    trace.latents.push(latents.map((l) => Float32Array.from(l)));
    for (const [site, idx] of Object.entries(result.matches)) (trace.matches[site] ??= []).push(idx);
    options.onStep?.(i + 1, timesteps.length);
  }
  return { latents, trace };
}
