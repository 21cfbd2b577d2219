/**
 * Pillow 9.4 `Image.resize(size, resample)` for 8-bit images (src/libImaging/Resample.c), bit for bit.
 *
 * - Separable convolution, horizontal pass first; the intermediate is rounded and clipped to uint8.
 * - Per output index: centre = (i + 0.5) * scale with scale = in / out; the kernel's support is multiplied by
 *   max(scale, 1) (antialiasing when downscaling) and its argument divided by it; taps from
 *   trunc(centre - support + 0.5) to trunc(centre + support + 0.5) clamped to the image; weights normalised to
 *   sum 1 in double precision, then to 22-bit fixed point (round half away from zero).
 * - Each output sample: (2^21 + sum(pixel * weight)) >> 22, clipped to 0..255.
 * - A pass whose size does not change is skipped (no copy through the kernel); the horizontal pass only
 *   computes the rows the vertical pass reads.
 *
 * Kernels: bilinear (triangle, support 1) and bicubic (Keys, a = -0.5, support 2), Pillow's own definitions.
 * The box argument of Image.resize is not ported (always the whole image, as load_size and torchvision use it).
 */
import { checkResizeArgs, copyRaster, type Raster } from './raster.js';

export type PilFilter = 'bilinear' | 'bicubic';

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

function bilinear(x: number): number {
  const ax = Math.abs(x);
  return ax < 1 ? 1 - ax : 0;
}

function bicubic(x: number): number {
  const a = -0.5;
  const ax = Math.abs(x);
  if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
  if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
  return 0;
}

const FILTERS: Record<PilFilter, { fn: (x: number) => number; support: number }> = {
  bilinear: { fn: bilinear, support: 1 },
  bicubic: { fn: bicubic, support: 2 },
};

interface Coeffs {
  ksize: number;
  /** [out * 2]: first tap, number of taps. */
  bounds: Int32Array;
  /** [out * ksize] fixed-point weights. */
  kk: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for in0 = 0, in1 = inSize. */
function coefficients(inSize: number, outSize: number, filter: PilFilter): Coeffs {
  const { fn, support: baseSupport } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? (k[x] ?? 0) / ww : (k[x] ?? 0);
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss: number): number {
  if (ss >= ONE * 256) return 255;
  if (ss <= 0) return 0;
  return Math.floor(ss / ONE);
}

/** Horizontal pass over rows [y0, y0 + rows) of `src` (width inW) into a uint8 image of outW x rows. */
function horizontal(src: Uint8Array, inW: number, channels: number, y0: number, rows: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outW * rows * channels);
  const { ksize, bounds, kk } = c;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0) * inW * channels;
    const rowOut = y * outW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const kOff = xx * ksize;
      for (let ch = 0; ch < channels; ch++) {
        let ss = HALF;
        for (let x = 0; x < xmax; x++) ss += src[rowIn + (x + xmin) * channels + ch]! * kk[kOff + x]!;
        out[rowOut + xx * channels + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/** Vertical pass: `src` is w x inH, the output w x outH. */
function vertical(src: Uint8Array, w: number, channels: number, outH: number, c: Coeffs, rowShift: number): Uint8Array {
  const out = new Uint8Array(w * outH * channels);
  const { ksize, bounds, kk } = c;
  const stride = w * channels;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - rowShift;
    const ymax = bounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) {
      let ss = HALF;
      for (let y = 0; y < ymax; y++) ss += src[(y + ymin) * stride + i]! * kk[kOff + y]!;
      out[rowOut + i] = clip8(ss);
    }
  }
  return out;
}

/**
 * Pillow's `Image.resize((width, height), resample)` of an 8-bit image with 1..4 independent channels (modes L,
 * RGB, RGBX, CMYK; Pillow premultiplies RGBA/LA first, which this does not do: give it RGB).
 */
export function pilResize(img: Raster, width: number, height: number, filter: PilFilter): Raster {
  checkResizeArgs('pilResize', img, width, height);
  if (width === img.width && height === img.height) return copyRaster(img);
  const { channels } = img;
  const needH = width !== img.width;
  const needV = height !== img.height;
  const horiz = coefficients(img.width, width, filter);
  const vert = coefficients(img.height, height, filter);
  let data = img.data;
  let rowShift = 0;
  if (needH) {
    const first = vert.bounds[0]!;
    const last = vert.bounds[height * 2 - 2]! + vert.bounds[height * 2 - 1]!;
    data = horizontal(data, img.width, channels, needV ? first : 0, needV ? last - first : img.height, width, horiz);
    rowShift = needV ? first : 0;
  }
  if (needV) data = vertical(data, width, channels, height, vert, rowShift);
  return { width, height, channels, data };
}
