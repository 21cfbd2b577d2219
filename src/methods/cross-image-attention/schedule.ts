/**
 * When Cross-Image Attention's rules fire (docs/method.md, "Cross-Image Attention"; CIA quirks 3, 4, 5, 7, 12): pure
 * functions of step numbers.
 *
 * "step" is the reference's `model.step`, an index into the truncated schedule set by the pipeline callback;
 * "iteration" is the index of the denoising loop. Both run over 0 .. N - skip - 1.
 */
import { Branch } from '../shared/branches.js';
import { NO_SWAP } from './controls.js';

/** A half-open range `[start, end)` as the reference's `Range(start, end)`. */
export interface StepRange {
  readonly start: number;
  readonly end: number;
}

/** The swap ranges by resolution level of the site: level 0 = the latent-size maps (SD 64x64), level 1 = SD 32x32. */
export interface SwapRanges {
  /** cross_attn_64_range: level-0 up-block self-attention. */
  readonly range64: StepRange;
  /** cross_attn_32_range: level-1 up-block self-attention. */
  readonly range32: StepRange;
}

/**
 * The step the attention rules read during the UNet calls of `iteration` (quirk 4): `model.step` is set by the
 * callback after the UNet calls and the DDPM step, so iteration i sees i - 1, and iterations 0 and 1 both see 0.
 */
export function stepSeenByUnet(iteration: number): number {
  return iteration === 0 ? 0 : iteration - 1;
}

/** Structure-refresh steps: `step % 5 == 0 and step < 40`, hard-coded in the reference (not scaled with N). */
export function isRefreshStep(step: number): boolean {
  return step % 5 === 0 && step < 40;
}

/** The range of a site's resolution level, or undefined for levels that never swap (coarser than SD 32x32). */
export function rangeOfLevel(level: number, ranges: SwapRanges): StepRange | undefined {
  return level === 0 ? ranges.range64 : level === 1 ? ranges.range32 : undefined;
}

/** Whether a site of `level` swaps at `step`: `start <= step < end` of its level's range. */
export function swapsAt(level: number, step: number, ranges: SwapRanges): boolean {
  const range = rangeOfLevel(level, ranges);
  return range !== undefined && range.start <= step && step < range.end;
}

/** The batch row whose K/V the out row takes at a site of `level` and `step`: struct on refresh steps, else style. */
export function kvSource(level: number, step: number, ranges: SwapRanges): number {
  if (!swapsAt(level, step, ranges)) return NO_SWAP;
  return isRefreshStep(step) ? Branch.Struct : Branch.Style;
}

/**
 * Swap guidance (quirk 5): applied at loop index `iteration` (not model.step) when the scale exceeds 1 and
 * `min(starts) <= iteration <= max(ends)` (an INCLUSIVE end).
 */
export function swapGuidanceApplies(iteration: number, ranges: SwapRanges, scale: number): boolean {
  const start = Math.min(ranges.range32.start, ranges.range64.start);
  const end = Math.max(ranges.range32.end, ranges.range64.end);
  return scale > 1 && start <= iteration && iteration <= end;
}

/**
 * The swap-guidance strength of every iteration: `np.linspace(scale, max(scale / 2, 1), n)` in float64
 * (numpy's arithmetic: `i * step + start`, the last value set to `stop`).
 */
export function swapStrengths(scale: number, iterations: number): number[] {
  const stop = Math.max(scale / 2, 1);
  if (iterations === 1) return [scale];
  const step = (stop - scale) / (iterations - 1);
  return Array.from({ length: iterations }, (_, i) => (i === iterations - 1 ? stop : i * step + scale));
}

/** The UNet calls of `iteration` record the self-segmentation maps (quirk 7): while model.step == adain.start - 1. */
export function recordsMaps(iteration: number, adainRange: StepRange): boolean {
  return stepSeenByUnet(iteration) === adainRange.start - 1;
}

/** The callback of `iteration` (which sets model.step = iteration) computes the masks (quirk 7). */
export function computesMasks(iteration: number, adainRange: StepRange): boolean {
  return iteration === adainRange.start;
}

/** AdaIN after the DDPM step of `iteration`: `start <= iteration < end` (quirk 12; no lag, no extra steps). */
export function adainAfterIteration(iteration: number, adainRange: StepRange): boolean {
  return adainRange.start <= iteration && iteration < adainRange.end;
}
