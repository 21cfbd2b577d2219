/**
 * OpenCV 4.6 `cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)` for 8-bit images
 * (modules/imgproc/src/resize.cpp), bit for bit.
 *
 * - Same size: a copy.
 * - Exactly half the size in both directions (scale_x = scale_y = 2 up to DBL_EPSILON): INTER_AREA's fast 2x2
 *   mean, (a + b + c + d + 2) >> 2.
 * - Otherwise fixed-point bilinear: scale = 1 / (dst / src) in double, f = float((d + 0.5) * scale - 0.5),
 *   s = floor(f), weights round-half-even((1 - f) * 2048) and round(f * 2048) of the float fraction (11 bits).
 *   Columns are clamped: s < 0 gives (s, f) = (0, 0), s >= src - 1 one tap at the last column (x 2048). Rows keep
 *   their fractional weights and read a clamped row index (the border row twice).
 *   Horizontal: h = p0 * a0 + p1 * a1 (int); vertical:
 *   (((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2, saturated to 0..255.
 */
import { checkResizeArgs, copyRaster, type Raster } from './raster.js';

const COEF_SCALE = 2048;

/** cvRound of a float: round half to even (what lrint / cvtss2si do). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function saturateShort(x: number): number {
  const r = roundHalfEven(x);
  return r < -32768 ? -32768 : r > 32767 ? 32767 : r;
}

interface Taps {
  /** Source index per output index (first tap). */
  ofs: Int32Array;
  /** Two fixed-point weights per output index. */
  w: Int16Array;
}

function taps(src: number, dst: number, scale: number, clampEnd: boolean): Taps & { xmax: number } {
  const ofs = new Int32Array(dst);
  const w = new Int16Array(dst * 2);
  let xmax = dst;
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampEnd) {
      if (s < 0) {
        f = 0;
        s = 0;
      }
      if (s + 1 >= src) {
        xmax = Math.min(xmax, d);
        if (s >= src - 1) {
          f = 0;
          s = src - 1;
        }
      }
    }
    ofs[d] = s;
    w[d * 2] = saturateShort(Math.fround(Math.fround(1 - f) * COEF_SCALE));
    w[d * 2 + 1] = saturateShort(Math.fround(f * COEF_SCALE));
  }
  return { ofs, w, xmax };
}

function areaFast2x(img: Raster, width: number, height: number): Raster {
  const { channels: cn, data } = img;
  const out = new Uint8Array(width * height * cn);
  const stride = img.width * cn;
  for (let y = 0; y < height; y++) {
    const r0 = 2 * y * stride;
    const r1 = r0 + stride;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < cn; c++) {
        const i = 2 * x * cn + c;
        out[(y * width + x) * cn + c] = (data[r0 + i]! + data[r0 + i + cn]! + data[r1 + i]! + data[r1 + i + cn]! + 2) >> 2;
      }
    }
  }
  return { width, height, channels: cn, data: out };
}

/** OpenCV's `cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)` of an 8-bit image, any channel count. */
export function cv2ResizeLinear(img: Raster, width: number, height: number): Raster {
  checkResizeArgs('cv2ResizeLinear', img, width, height);
  if (width === img.width && height === img.height) return copyRaster(img);
  const scaleX = 1 / (width / img.width);
  const scaleY = 1 / (height / img.height);
  const iscaleX = Math.round(scaleX);
  const iscaleY = Math.round(scaleY);
  if (iscaleX === 2 && iscaleY === 2 && Math.abs(scaleX - iscaleX) < Number.EPSILON && Math.abs(scaleY - iscaleY) < Number.EPSILON) {
    return areaFast2x(img, width, height);
  }
  const { channels: cn, data } = img;
  const cols = taps(img.width, width, scaleX, true);
  const rows = taps(img.height, height, scaleY, false);
  const srcStride = img.width * cn;
  const dstStride = width * cn;
  // Horizontal pass of one source row into an int row (cached: consecutive output rows share source rows).
  const hrow = (sy: number): Int32Array => {
    const out = new Int32Array(dstStride);
    const base = sy * srcStride;
    for (let dx = 0; dx < width; dx++) {
      const sx = cols.ofs[dx]! * cn;
      const a0 = cols.w[dx * 2]!;
      const a1 = cols.w[dx * 2 + 1]!;
      for (let c = 0; c < cn; c++) {
        const p = base + sx + c;
        out[dx * cn + c] = dx < cols.xmax ? data[p]! * a0 + data[p + cn]! * a1 : data[p]! * COEF_SCALE;
      }
    }
    return out;
  };
  const cache = new Map<number, Int32Array>();
  const row = (sy: number): Int32Array => {
    const clamped = sy < 0 ? 0 : sy >= img.height ? img.height - 1 : sy;
    let r = cache.get(clamped);
    if (r === undefined) {
      if (cache.size > 4) cache.clear();
      r = hrow(clamped);
      cache.set(clamped, r);
    }
    return r;
  };
  const out = new Uint8Array(height * dstStride);
  for (let dy = 0; dy < height; dy++) {
    const sy = rows.ofs[dy]!;
    const h0 = row(sy);
    const h1 = row(sy + 1);
    const b0 = rows.w[dy * 2]!;
    const b1 = rows.w[dy * 2 + 1]!;
    const o = dy * dstStride;
    for (let i = 0; i < dstStride; i++) {
      const v = (((b0 * (h0[i]! >> 4)) >> 16) + ((b1 * (h1[i]! >> 4)) >> 16) + 2) >> 2;
      out[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, channels: cn, data: out };
}
