/**
 * When Eye-for-an-eye's rules fire (docs/method.md §3-4; quirks 5, 6, 7): pure predicates over step numbers.
 *
 * "step" is the reference's `model.step`: an index into the truncated schedule (0 .. N - skip - 1), not a timestep
 * and not an absolute step number. "iteration" is the index of the denoising loop (0 .. N - skip - 1).
 */
import type { E4EMode, Injection } from './controls.js';

/** A half-open range of steps `[start, end)`, as the reference's `Range(start, end)`. */
export interface StepRange {
  readonly start: number;
  readonly end: number;
}

/** Feature injection is active while `featRange.start <= step < featRange.end`. */
export function inFeatureRange(step: number, range: StepRange): boolean {
  return range.start <= step && step < range.end;
}

/**
 * Structure-copy steps: `step % 5 == 0 and step < 40`, hard-coded in the reference's attention processor (not a
 * config value, and not scaled with the number of timesteps). Only meaningful inside the feature range.
 */
export function isStructureCopyStep(step: number): boolean {
  return step % 5 === 0 && step < 40;
}

/** AdaIN runs after the DDPM step of iteration `step` for `start - 1 <= step < end + 1` (one extra step at each end). */
export function inAdainRange(step: number, range: StepRange): boolean {
  return range.start - 1 <= step && step < range.end + 1;
}

/**
 * The step the attention rules read during the UNet call of `iteration`.
 *
 * The one-step lag of the reference, written once: `model.step` is only set by the pipeline callback, which runs
 * after the UNet call and the DDPM step of an iteration (`callback(i, ...)` sets `step = i`). So the UNet of
 * iteration i sees the value set after iteration i - 1, and iterations 0 and 1 both see the initial 0.
 */
export function stepSeenByUnet(iteration: number): number {
  return iteration === 0 ? 0 : iteration - 1;
}

/**
 * Whether the out latent gets AdaIN after the DDPM step of `iteration`: the callback sets `step = iteration` and
 * then applies the AdaIN range to it (no lag here).
 */
export function adainAfterIteration(iteration: number, adainRange: StepRange): boolean {
  return inAdainRange(iteration, adainRange);
}

/** The processor's mode for a UNet call that sees `step`: off outside the feature range, else copy or match. */
export function attentionMode(step: number, featRange: StepRange): Exclude<E4EMode, 'vInjection'> {
  if (!inFeatureRange(step, featRange)) return 'off';
  return isStructureCopyStep(step) ? 'structCopy' : 'match';
}

/**
 * The mode of a UNet call for an injection kind. V injection has no structure-copy steps: the reference runs it with
 * `feature_swap = not do_v_swap`, so the copy rule never fires and the values are rearranged at every step of the
 * feature range.
 */
export function injectionMode(step: number, featRange: StepRange, injection: Injection): E4EMode {
  const rule = attentionMode(step, featRange);
  if (injection === 'match' || rule === 'off') return rule;
  return 'vInjection';
}

/** The schedule the reference's default ranges are given in: 100 DDIM steps, 32 skipped (68 iterations). */
export const REFERENCE_SCHEDULE = Object.freeze({ numSteps: 100, skip: 32 });

/** The reference's default ranges in its schedule: feature injection [10, 70), AdaIN [50, 100). */
export const REFERENCE_RANGES = Object.freeze({ featRange: Object.freeze([10, 70] as const), adainRange: Object.freeze([50, 100] as const) });

/** The reference's `skip` scaled to `numSteps` steps: round(32 N / 100), at most N - 1 (the same start noise level). */
export function scaledDefaultSkip(numSteps: number): number {
  return Math.min(Math.round((REFERENCE_SCHEDULE.skip * numSteps) / REFERENCE_SCHEDULE.numSteps), numSteps - 1);
}

/**
 * The reference's default ranges scaled from its 68 iterations to the `numSteps - skip` iterations of this schedule:
 * each end is round(value x iterations / 68), so at 100 / 32 they are exactly [10, 70) and [50, 100), and at any
 * other schedule they cover the same fractions of the transfer (both run to its end, as the reference's do).
 */
export function scaledDefaultRanges(numSteps: number, skip: number): { featRange: readonly [number, number]; adainRange: readonly [number, number] } {
  const iterations = numSteps - skip;
  const reference = REFERENCE_SCHEDULE.numSteps - REFERENCE_SCHEDULE.skip;
  const scale = (r: readonly [number, number]): readonly [number, number] => {
    const start = Math.round((r[0] * iterations) / reference);
    return Object.freeze([start, Math.max(start + 1, Math.round((r[1] * iterations) / reference))] as const);
  };
  return { featRange: scale(REFERENCE_RANGES.featRange), adainRange: scale(REFERENCE_RANGES.adainRange) };
}

/** The steps the UNet sees over a transfer of `iterations` iterations (with the one-step lag): 0 .. max(iterations - 2, 0). */
export function lastStepSeenByUnet(iterations: number): number {
  return stepSeenByUnet(Math.max(iterations - 1, 0));
}

/** Iterations `[first, last]` (inclusive) at which feature injection is active, or undefined when it never is. */
export function featureIterations(iterations: number, featRange: StepRange): readonly [number, number] | undefined {
  const active: number[] = [];
  for (let i = 0; i < iterations; i++) if (inFeatureRange(stepSeenByUnet(i), featRange)) active.push(i);
  return active.length === 0 ? undefined : [active[0]!, active.at(-1)!];
}

/** Iterations `[first, last]` (inclusive) after which AdaIN runs, or undefined when it never does. */
export function adainIterations(iterations: number, adainRange: StepRange): readonly [number, number] | undefined {
  const first = Math.max(adainRange.start - 1, 0);
  const last = Math.min(adainRange.end, iterations - 1);
  return first <= last ? [first, last] : undefined;
}

/** Iterations whose UNet call copies the structure's features (the hard-coded `step % 5 == 0 && step < 40`). */
export function structureCopyIterations(iterations: number, featRange: StepRange): number[] {
  const copies: number[] = [];
  for (let i = 0; i < iterations; i++) if (attentionMode(stepSeenByUnet(i), featRange) === 'structCopy') copies.push(i);
  return copies;
}
