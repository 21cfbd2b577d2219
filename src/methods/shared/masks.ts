/**
 * Object masks: 0/1 masks at image size, resized bilinearly to the latent (AdaIN) or feature (matching) size the way
 * the reference does it: `F.interpolate(mask.float().view(1, 1, H, W), size=(h, w), mode='bilinear')`
 * (align_corners=False, no antialias). Resizing a binary mask gives fractional values at the object border
 * (0 / 0.5 / 1 for an 8x reduction), which matters: AdaIN statistics use only the pixels that are exactly 1.
 */
import { invalidParameterError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';

const f32 = Math.fround;

interface AxisTaps {
  readonly index0: Int32Array;
  readonly index1: Int32Array;
  readonly lambda0: Float32Array;
  readonly lambda1: Float32Array;
}

/**
 * Source taps of one axis, as ATen's `compute_source_index_and_lambda` (UpSample.h) produces them for a float32
 * tensor (measured against torch 1.13 with one-hot probes): the scale is float32, `(float)in / out`; the source
 * index `scale * (dst + 0.5) - 0.5` (clamped below at 0) and `lambda1 = clamp(src - trunc(src), 0, 1)` are computed
 * in double; lambda1 is stored as float32 and `lambda0 = 1 - lambda1` is computed in float32. Equal sizes copy.
 */
function axisTaps(inSize: number, outSize: number): AxisTaps {
  const taps = {
    index0: new Int32Array(outSize),
    index1: new Int32Array(outSize),
    lambda0: new Float32Array(outSize),
    lambda1: new Float32Array(outSize),
  };
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    if (inSize === outSize) {
      taps.index0[o] = o;
      taps.index1[o] = o;
      taps.lambda0[o] = 1;
      continue;
    }
    const unclamped = scale * (o + 0.5) - 0.5;
    const src = unclamped < 0 ? 0 : unclamped;
    const i0 = Math.trunc(src);
    const lambda1 = f32(Math.min(Math.max(src - i0, 0), 1));
    taps.index0[o] = i0;
    taps.index1[o] = i0 + (i0 < inSize - 1 ? 1 : 0);
    taps.lambda1[o] = lambda1;
    taps.lambda0[o] = f32(1 - lambda1);
  }
  return taps;
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw invalidParameterError(name, 'positive integer', value);
}

/**
 * Bilinear resize of one HxW float32 plane with PyTorch `F.interpolate(mode='bilinear', align_corners=False,
 * antialias=False)` semantics (no antialiasing when shrinking: each output reads 2x2 source pixels, with the
 * negative source coordinates of the first outputs clamped to 0). The taps match torch exactly; the weighted sum
 * `l0h * (l0w * a + l1w * b) + l1h * (l0w * c + l1w * d)` is accumulated in double and rounded once, which is
 * bit-exact for integer shrink factors (512 -> 64 / 32, 128 -> 16 / 8, the sizes the method uses) and within a
 * few float32 ulp of torch 1.13 otherwise (its kernel's own rounding order was not reproduced).
 */
export function resizeBilinear(src: Float32Array, srcH: number, srcW: number, dstH: number, dstW: number): Float32Array {
  for (const [name, v] of [
    ['srcH', srcH],
    ['srcW', srcW],
    ['dstH', dstH],
    ['dstW', dstW],
  ] as const)
    checkSize(name, v);
  if (src.length !== srcH * srcW) throw invalidParameterError('src.length', `${srcH * srcW} (srcH * srcW)`, src.length);
  const rows = axisTaps(srcH, dstH);
  const cols = axisTaps(srcW, dstW);
  const out = new Float32Array(dstH * dstW);
  const rowMix = (row: number, x: number): number => {
    const a = src[row * srcW + (cols.index0[x] ?? 0)] ?? 0;
    const b = src[row * srcW + (cols.index1[x] ?? 0)] ?? 0;
    return a * (cols.lambda0[x] ?? 0) + b * (cols.lambda1[x] ?? 0);
  };
  for (let y = 0; y < dstH; y++) {
    const r0 = rows.index0[y] ?? 0;
    const r1 = rows.index1[y] ?? 0;
    const l0 = rows.lambda0[y] ?? 0;
    const l1 = rows.lambda1[y] ?? 0;
    for (let x = 0; x < dstW; x++) {
      out[y * dstW + x] = rowMix(r0, x) * l0 + rowMix(r1, x) * l1;
    }
  }
  return out;
}

/** A 0/1 (or boolean) uint8 mask as float32 0/1, like `torch.tensor(bool_mask).float()`: any non-zero value is 1. */
export function maskToFloat(mask: Uint8Array): Float32Array {
  return Float32Array.from(mask, (v) => (v !== 0 ? 1 : 0));
}

/**
 * The reference's `mask_down`: a [H, W] mask (uint8/bool 0-1, or float32) resized bilinearly to h x w.
 */
export function downMask(mask: Tensor<'uint8' | 'bool' | 'float32'>, h: number, w: number): Float32Array {
  const [height, width, ...rest] = mask.dims;
  if (height === undefined || width === undefined || rest.length > 0) {
    throw invalidParameterError('mask.dims', '[H, W]', [...mask.dims]);
  }
  const plane = mask.data instanceof Float32Array ? mask.data : maskToFloat(mask.data);
  return resizeBilinear(plane, height, width, h, w);
}
