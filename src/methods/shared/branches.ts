/**
 * The three latents every appearance-transfer method here denoises together, [out, style, struct], and the batch the
 * UNet sees: with classifier-free guidance each twice, [uncond out, uncond style, uncond struct, cond out, cond style,
 * cond struct] (the reference's order: the negative prompt first).
 */
import type { DdimSchedule } from '../../diffusion/ddim-schedule.js';
import { ddpmStep } from '../../diffusion/ddpm-step.js';
import { classifierFreeGuidance } from '../../diffusion/guidance.js';
import { concatRows, type Tensor } from '../../tensor/tensor.js';
import type { BranchInversion } from '../method.js';

export const Branch = { Out: 0, Style: 1, Struct: 2 } as const;
export const BRANCHES = 3;

/** Row of a branch in the UNet batch: its uncond row, or with `cond` its cond row (guided batches only). */
export function batchRow(branch: number, half: 'uncond' | 'cond', guided: boolean): number {
  return guided && half === 'cond' ? BRANCHES + branch : branch;
}

/** The UNet batch of the branches' latents [B, C, h, w]: each once, or twice with guidance. */
export function branchBatch(latents: readonly Float32Array[], latentDims: readonly [number, number, number], guided: boolean): Tensor<'float32'> {
  const rows = guided ? [...latents, ...latents] : latents;
  return { dtype: 'float32', dims: [rows.length, ...latentDims], data: concatRows(rows) };
}

/** The encoder hidden states of a branch batch: [uncond x3, cond x3] with guidance, else [cond x3]. */
export function branchContext(embeddings: { uncond: Tensor<'float32'>; cond: Tensor<'float32'> }, guided: boolean): Tensor<'float32'> {
  const { uncond, cond } = embeddings;
  const rows = guided ? [uncond, uncond, uncond, cond, cond, cond] : [cond, cond, cond];
  return { dtype: 'float32', dims: [rows.length, ...cond.dims.slice(1)], data: concatRows(rows.map((t) => t.data)) };
}

/** Per branch, the (guided) noise prediction from the UNet output of a branch batch. */
export function branchNoise(noise: Float32Array, latentSize: number, guided: boolean, guidanceScale: number): Float32Array[] {
  return Array.from({ length: BRANCHES }, (_, b) => {
    const row = (r: number): Float32Array => noise.subarray(r * latentSize, (r + 1) * latentSize);
    const cond = row(batchRow(b, 'cond', guided));
    return guided ? classifierFreeGuidance(row(batchRow(b, 'uncond', guided)), cond, guidanceScale) : Float32Array.from(cond);
  });
}

/**
 * The branches' latents at the start of the loop, `skip` steps into the schedule: [struct, app, struct] (the out
 * branch starts from the STRUCTURE image, docs/method.md quirk 15), and each branch's noise maps.
 */
export function initialBranches(app: BranchInversion, struct: BranchInversion, skip: number): { latents: Float32Array[]; branches: BranchInversion[] } {
  const branches = [struct, app, struct]; // [out, style, struct]
  return { latents: branches.map((b) => Float32Array.from(b.xts[skip]!)), branches };
}

/** One eta = 1 DDPM step of every branch with its own noise map of iteration `i` (after `skip`). */
export function stepBranches(
  latents: readonly Float32Array[],
  eps: readonly Float32Array[],
  branches: readonly BranchInversion[],
  step: { schedule: DdimSchedule; timestep: number; numSteps: number; zIndex: number },
): Float32Array[] {
  const { schedule, timestep, numSteps, zIndex } = step;
  const alphaProd = schedule.alphaCumprodAt(timestep);
  const alphaProdPrev = schedule.alphaCumprodAt(schedule.prevTimestep(timestep, numSteps));
  return latents.map((sample, b) => ddpmStep({ sample, noisePred: eps[b]!, z: branches[b]!.zs[zIndex]!, alphaProd, alphaProdPrev }));
}
