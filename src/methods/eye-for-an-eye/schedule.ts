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
