/**
 * The FreeU variant of the reference (docs/method.md §1, quirk 10): on the BACKBONE features entering each
 * up block, scale the first channels and damp the 2x2 lowest frequencies with a Fourier filter.
 * Mirrors the official FreeUUNet2DConditionModel (sooyeon-go/eye_for_an_eye, models/unet_2d_condition.py), which
 * adapts the FreeU backbone rule to diffusers v0.19.3's `UNet2DConditionModel.forward`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_condition.py
 */
import { invalidParameterError } from '../../errors.js';
import {
  add,
  cast,
  concat,
  constFloat,
  constInt64,
  cos,
  div,
  greater,
  matMul,
  mul,
  reshape,
  shape,
  sin,
  slice,
  squeeze,
  sub,
  transpose,
  unsqueeze,
} from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import type { UNetConfig } from '../../config/unet-config.js';

export interface FreeUOptions {
  /** Backbone factor on the first 2*C0 channels of a 4*C0-channel input. */
  readonly b1: number;
  /** Backbone factor on the first C0 channels of a 2*C0-channel input. */
  readonly b2: number;
  /** Low-frequency scale of the Fourier filter for 4*C0 channels. */
  readonly s1: number;
  /** Low-frequency scale of the Fourier filter for 2*C0 channels. */
  readonly s2: number;
  /** C0: block_out_channels[0] (SD: 320, so the rules fire at 1280 and 640 channels). */
  readonly baseChannels: number;
}

/** The values the official code hard-codes (the SD-1.4/1.5 FreeU values, also used for other models). */
export function officialFreeU(config: UNetConfig): FreeUOptions {
  return { b1: 1.2, b2: 1.4, s1: 0.9, s2: 0.2, baseChannels: config.blockOutChannels[0]! };
}

export function validateFreeU(options: FreeUOptions): void {
  for (const key of ['b1', 'b2', 's1', 's2'] as const) {
    if (typeof options[key] !== 'number' || !Number.isFinite(options[key])) throw invalidParameterError(`freeu.${key}`, 'a finite number', options[key]);
  }
  if (!Number.isSafeInteger(options.baseChannels) || options.baseChannels <= 0) {
    throw invalidParameterError('freeu.baseChannels', 'a positive integer', options.baseChannels);
  }
}

/**
 * The rule for an up block whose backbone input has `channels` channels (the rules are checked in this order, like
 * the official `if`s; channel counts are static, so the choice is made at build time):
 *
 *   4*C0: h[:, :2*C0] *= b1 -> FourierFilter(h, 1, s1)        2*C0: h[:, :C0] *= b2 -> FourierFilter(h, 1, s2)
 */
export function buildFreeU(scope: WeightScope, options: FreeUOptions, h: Value, channels: number): Value {
  const c0 = options.baseChannels;
  const rule =
    channels === 4 * c0
      ? { first: 2 * c0, factor: options.b1, scale: options.s1 }
      : channels === 2 * c0
        ? { first: c0, factor: options.b2, scale: options.s2 }
        : null;
  if (rule === null) return h;
  const factors = Array.from({ length: channels }, (_, i) => (i < rule.first ? rule.factor : 1));
  const scaled = mul(scope, h, constFloat(scope.g, factors, [channels, 1, 1]), { name: 'Mul_backbone' }); // [B, C, H, W]
  return buildFourierFilter(scope.sub('fourier_filter'), scaled, rule.scale);
}

/**
 * fftn -> fftshift -> window [H//2-1 : H//2+1, W//2-1 : W//2+1] *= scale -> ifftshift -> ifftn -> real, as a real
 * linear operator. The window holds the unshifted frequencies ky in {0, -1} (mod H) x kx in {0, -1} (mod W), so
 *
 *   y = x - (1 - scale) / (H W) * (x_flat @ Bm) @ Bm^T,   Bm = [cos θ_k | sin θ_k] over those (unique) pairs k,
 *   θ_k[m] = 2π (ky my / H + kx mx / W)
 *
 * (a 2x2 map keeps the whole spectrum in the window: y = scale * x). Bm [HW, 8] is computed in the graph from the
 * dynamic H, W.
 */
export function buildFourierFilter(scope: WeightScope, x: Value, scale: number): Value {
  const g = scope.g;
  const xShape = shape(scope, x); // [4]
  const hw = slice(scope, xShape, { starts: [2], ends: [4], axes: [0] }, { name: 'Slice_hw' }); // [2]: H, W
  const basis = fourierBasis(scope, hw); // [HW, 8]
  const flat = reshape(scope, x, [0, 0, -1], { name: 'Reshape_flat' }); // [B, C, HW]
  const coefficients = matMul(scope, flat, basis, { name: 'MatMul_analysis' }); // [B, C, 8]
  const lowPass = matMul(scope, coefficients, transpose(scope, basis, [1, 0]), { name: 'MatMul_synthesis' }); // [B, C, HW]
  const count = cast(scope, squeeze(scope, tokenCount(scope, hw), [0]), 'float32', { name: 'Cast_count' }); // []
  const factor = div(scope, constFloat(g, 1 - scale), count, { name: 'Div_factor' }); // []
  const filtered = sub(scope, flat, mul(scope, lowPass, factor, { name: 'Mul_factor' })); // [B, C, HW]
  return reshape(scope, filtered, xShape, { name: 'Reshape_back' }); // [B, C, H, W]
}

/** H * W as int64 [1]. */
function tokenCount(scope: WeightScope, hw: Value): Value {
  const h = slice(scope, hw, { starts: [0], ends: [1], axes: [0] }, { name: 'Slice_h' }); // [1]
  const w = slice(scope, hw, { starts: [1], ends: [2], axes: [0] }, { name: 'Slice_w' }); // [1]
  return mul(scope, h, w, { name: 'Mul_hw' }); // [1]
}

/**
 *   my = 0..H-1, mx = 0..W-1 ─ a = 2π my / H [H,1,1], b = 2π mx / W [1,W,1]
 *   θ = a * ky + b * kx  (ky = [0,1,0,1], kx = [0,0,1,1])                                  [H, W, 4]
 *   weights w = [1, wy, wx, wy wx]  (wy = H > 1: on a 1-row map ky = -1 is ky = 0, counted once)
 *   Bm = concat(cos θ * w, sin θ * w) -> [HW, 8]
 */
function fourierBasis(scope: WeightScope, hw: Value): Value {
  const g = scope.g;
  const s = scope.sub('basis');
  const axis = (index: number, name: string): { angle: Value; weight: Value } => {
    const n = slice(s, hw, { starts: [index], ends: [index + 1], axes: [0] }, { name: `Slice_${name}` }); // [1]
    const limit = squeeze(s, n, [0], { name: `Squeeze_${name}` }); // []
    const indices = s.op('Range', [constInt64(g, 0), limit, constInt64(g, 1)], {}, { name: `Range_${name}` }); // [n]
    const positions = cast(s, indices, 'float32', { name: `Cast_positions_${name}` }); // [n]
    const step = div(s, constFloat(g, 2 * Math.PI), cast(s, n, 'float32', { name: `Cast_${name}` }), { name: `Div_${name}` }); // [1]
    const angle = mul(s, positions, step, { name: `Mul_angle_${name}` }); // [n]
    const weight = cast(s, greater(s, n, constInt64(g, 1), { name: `Greater_${name}` }), 'float32', { name: `Cast_weight_${name}` }); // [1]
    return { angle, weight };
  };
  const y = axis(0, 'h');
  const x = axis(1, 'w');
  const ky = constFloat(g, [0, 1, 0, 1]);
  const kx = constFloat(g, [0, 0, 1, 1]);
  const a = mul(s, unsqueeze(s, y.angle, [1, 2], { name: 'Unsqueeze_h' }), ky, { name: 'Mul_ky' }); // [H, 1, 4]
  const b = mul(s, unsqueeze(s, x.angle, [0, 2], { name: 'Unsqueeze_w' }), kx, { name: 'Mul_kx' }); // [1, W, 4]
  const theta = add(s, a, b, { name: 'Add_theta' }); // [H, W, 4]
  const one = constFloat(g, 1);
  // weight of pair k: (1 - ky (1 - wy)) (1 - kx (1 - wx)), i.e. [1, wy, wx, wy wx]
  const wy = sub(s, one, mul(s, ky, sub(s, one, y.weight, { name: 'Sub_wy' }), { name: 'Mul_wy' }), { name: 'Sub_ky' }); // [4]
  const wx = sub(s, one, mul(s, kx, sub(s, one, x.weight, { name: 'Sub_wx' }), { name: 'Mul_wx' }), { name: 'Sub_kx' }); // [4]
  const weights = mul(s, wy, wx, { name: 'Mul_weights' }); // [4]
  const cosTheta = cos(s, theta); // [H, W, 4]
  const sinTheta = sin(s, theta); // [H, W, 4]
  // WebGPU's sin/cos are approximations (1e-4 off at a few radians); the basis is small, the CPU exact.
  for (const v of [cosTheta, sinTheta]) g.keepOnCpu(v, 'sin/cos of the FreeU Fourier basis need CPU accuracy');
  const columns = concat(s, [mul(s, cosTheta, weights, { name: 'Mul_cos' }), mul(s, sinTheta, weights, { name: 'Mul_sin' })], 2); // [H, W, 8]
  return reshape(s, columns, [-1, 8], { name: 'Reshape_basis' }); // [HW, 8]
}
