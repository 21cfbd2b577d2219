/**
 * AdaIN on latents (docs/method.md §5, quirk 7), as the reference's utils/adain.py computes it:
 * per channel `(c - mean(c)) / std(c) * std(s) + mean(s)` with `std = sqrt(var_unbiased + 1e-5)`.
 * The masked variant takes the statistics of the content over the pixels where the structure mask is exactly 1 and
 * of the style where the appearance mask is exactly 1, then blends `c * (1 - m) + adain * m` with the fractional
 * structure mask m. Means and variances are accumulated in double and rounded to float32 (torch's CPU variance
 * accumulates in double); the element-wise part is rounded per op in float32 in the reference's order.
 */
import { invalidParameterError } from '../../errors.js';

const f32 = Math.fround;
const ADAIN_EPS = 1e-5;

/** Latent dims [C, H, W] of one image. */
export type LatentDims = readonly [channels: number, height: number, width: number];

interface ChannelStats {
  readonly mean: Float32Array;
  /** sqrt(var_unbiased + 1e-5) */
  readonly std: Float32Array;
}

/** A pixel takes part in the masked statistics only where the resized mask is exactly 1 (`mask == 1`). */
export function isStatisticsPixel(maskValue: number): boolean {
  return maskValue === 1;
}

function channelStats(x: Float32Array, dims: LatentDims, pixels: readonly number[]): ChannelStats {
  const [channels, height, width] = dims;
  const plane = height * width;
  const mean = new Float32Array(channels);
  const std = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (const p of pixels) sum += x[c * plane + p] ?? 0;
    const m = sum / pixels.length;
    let squares = 0;
    for (const p of pixels) squares += ((x[c * plane + p] ?? 0) - m) ** 2;
    const variance = f32(squares / (pixels.length - 1));
    mean[c] = m;
    std[c] = f32(Math.sqrt(f32(variance + f32(ADAIN_EPS))));
  }
  return { mean, std };
}

function checkDims(name: string, x: Float32Array, dims: LatentDims): void {
  const [channels, height, width] = dims;
  if (![channels, height, width].every((d) => Number.isInteger(d) && d > 0)) {
    throw invalidParameterError('dims', 'three positive integers [C, H, W]', [...dims]);
  }
  if (x.length !== channels * height * width) {
    throw invalidParameterError(`${name}.length`, `${channels * height * width} (C * H * W)`, x.length);
  }
}

function allPixels(dims: LatentDims): number[] {
  return Array.from({ length: dims[1] * dims[2] }, (_, i) => i);
}

function statisticsPixels(name: string, mask: Float32Array, dims: LatentDims): number[] {
  if (mask.length !== dims[1] * dims[2]) throw invalidParameterError(`${name}.length`, `${dims[1] * dims[2]} (H * W)`, mask.length);
  const pixels: number[] = [];
  mask.forEach((v, i) => {
    if (isStatisticsPixel(v)) pixels.push(i);
  });
  // one pixel gives an unbiased variance of 0/0 (NaN in the reference); refuse instead of spreading NaN
  if (pixels.length < 2) throw invalidParameterError(name, 'mask with at least 2 pixels equal to 1', `${pixels.length} such pixels`);
  return pixels;
}

/** The stylised content `(c - mean_c) / std_c * std_s + mean_s` for every element, in float32. */
function stylise(content: Float32Array, dims: LatentDims, contentStats: ChannelStats, styleStats: ChannelStats): Float32Array {
  const plane = dims[1] * dims[2];
  const out = new Float32Array(content.length);
  for (let c = 0; c < dims[0]; c++) {
    const meanC = contentStats.mean[c] ?? 0;
    const stdC = contentStats.std[c] ?? 1;
    const meanS = styleStats.mean[c] ?? 0;
    const stdS = styleStats.std[c] ?? 1;
    for (let p = 0; p < plane; p++) {
      const i = c * plane + p;
      const normalised = f32(f32((content[i] ?? 0) - meanC) / stdC);
      out[i] = f32(f32(normalised * stdS) + meanS);
    }
  }
  return out;
}

/** AdaIN of a [C, H, W] latent towards a style latent of the same dims, statistics over all pixels. */
export function adain(content: Float32Array, style: Float32Array, dims: LatentDims): Float32Array {
  checkDims('content', content, dims);
  checkDims('style', style, dims);
  const pixels = allPixels(dims);
  return stylise(content, dims, channelStats(content, dims, pixels), channelStats(style, dims, pixels));
}

/**
 * Masked AdaIN: `structMask` (content, H x W, fractional) selects the content statistics (== 1) and blends the
 * result; `appMask` (style, H x W) selects the style statistics (== 1).
 */
export function maskedAdain(content: Float32Array, style: Float32Array, structMask: Float32Array, appMask: Float32Array, dims: LatentDims): Float32Array {
  checkDims('content', content, dims);
  checkDims('style', style, dims);
  const contentStats = channelStats(content, dims, statisticsPixels('structMask', structMask, dims));
  const styleStats = channelStats(style, dims, statisticsPixels('appMask', appMask, dims));
  const stylised = stylise(content, dims, contentStats, styleStats);
  const plane = dims[1] * dims[2];
  const out = new Float32Array(content.length);
  for (let i = 0; i < out.length; i++) {
    const m = structMask[i % plane] ?? 0;
    out[i] = f32(f32((content[i] ?? 0) * f32(1 - m)) + f32((stylised[i] ?? 0) * m));
  }
  return out;
}
