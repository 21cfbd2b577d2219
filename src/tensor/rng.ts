/**
 * Seeded randomness. `Rng` is what the library consumes (docs/architecture.md, "House rules": randomness is an input);
 * `TorchCpuRng` reproduces `torch.manual_seed(seed); torch.randn(n)` of PyTorch on CPU, float32, bit for bit.
 *
 * What torch does (aten/src/ATen/native/cpu/DistributionTemplates.h, CPUGeneratorImpl, avx_mathfun.h):
 * - the generator is a standard mt19937 seeded with the low 32 bits of the seed;
 * - n >= 16 (contiguous float32): n uniform floats `(u32 & 0xffffff) * 2^-24` are drawn first, then every block of 16
 *   becomes 16 normals by Box-Muller on the pairs (j, j+8): `r = sqrt(-2 log(1 - u[j]))`, `theta = 2 pi u[j+8]`,
 *   `out[j] = r cos(theta)`, `out[j+8] = r sin(theta)`. If n % 16 != 0, 16 fresh uniforms are drawn for the last 16
 *   slots and that block is recomputed. With the AVX2 kernel, log/sincos are the Cephes-style polynomials of
 *   avx_mathfun.h, evaluated in float32 with the multiply-adds that GCC contracts into FMA; they are emulated here.
 * - n < 16: element by element, a double Box-Muller on two 53-bit uniforms, returning the cosine branch and caching
 *   the sine branch for the next element (the cache survives between calls and is cleared by the seed).
 *
 * Parity: checked bit-exactly against torch 1.13 (Debian build, AVX2 kernel) for seeds 0, 42 and 1100 and sizes
 * 1..100003, and against the recorded `torch.randn_like` draws of the sd1-tiny golden. Torch builds that dispatch
 * to the DEFAULT (or, in torch 1.13, AVX-512) kernel use libm's logf/cosf/sinf instead; there about 1.5% of the
 * values differ by 1 to 3 ulp (measured with ATEN_CPU_CAPABILITY=default). The n < 16 path is the same everywhere.
 * The reference itself ran on CUDA, whose generator differs, so golden tests inject recorded noise instead.
 */
import { invalidParameterError } from '../errors.js';

export interface Rng {
  /** `n` independent standard normal float32 values. */
  randn(n: number): Float32Array;
}

const f32 = Math.fround;
const MT_N = 624;
const MT_M = 397;

/** The mt19937 engine as torch's at::mt19937 (init_genrand seeding, standard tempering). */
class Mt19937 {
  private readonly state = new Uint32Array(MT_N);
  private index = MT_N;

  constructor(seed32: number) {
    this.state[0] = seed32 >>> 0;
    for (let j = 1; j < MT_N; j++) {
      const prev = this.state[j - 1] ?? 0;
      this.state[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
  }

  nextUint32(): number {
    if (this.index >= MT_N) this.twist();
    let y = this.state[this.index++] ?? 0;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let k = 0; k < MT_N; k++) {
      const y = ((s[k] ?? 0) & 0x80000000) | ((s[(k + 1) % MT_N] ?? 0) & 0x7fffffff);
      s[k] = ((s[(k + MT_M) % MT_N] ?? 0) ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0)) >>> 0;
    }
    this.index = 0;
  }
}

// ---- float32 helpers -------------------------------------------------------------------------------------------

const bitsView = new DataView(new ArrayBuffer(4));

function floatBits(x: number): number {
  bitsView.setFloat32(0, x);
  return bitsView.getUint32(0);
}

function floatFromBits(bits: number): number {
  bitsView.setUint32(0, bits >>> 0);
  return bitsView.getFloat32(0);
}

/** The float32 next to `r` (a float32, not 0) in the direction of `toward`. */
function adjacentFloat(r: number, toward: number): number {
  const awayFromZero = toward > r === r > 0;
  const bits = floatBits(r);
  return floatFromBits(awayFromZero ? bits + 1 : bits - 1);
}

/**
 * Single-rounded float32 fused multiply-add `a*b + c` for float32 inputs. `a*b` is exact in double; the sum is
 * rounded once to double, so the only wrong case of a plain fround is a double sum sitting exactly on a float32
 * midpoint with a non-zero residual, which the TwoSum error term resolves.
 */
export function fmaf32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  const r = f32(s);
  if (err === 0 || r === s || r === 0) return r;
  const other = adjacentFloat(r, s);
  if (s - r !== other - s) return r;
  return err > 0 === other > r ? other : r;
}

// ---- avx_mathfun.h (Cephes float polynomials), as compiled with FMA contraction --------------------------------

const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f32);
const LOG_Q1 = f32(-2.1219444e-4);
const LOG_Q2 = f32(0.693359375);
// eslint-disable-next-line no-loss-of-precision -- the Cephes constant digit for digit, rounded to float32 by f32()
const SQRT_HALF = f32(0.707106781186547524);
const MIN_NORM_POS = floatFromBits(0x00800000);

/** log256_ps for one lane (input in (0, 1], as Box-Muller feeds it). */
function logAvx2(input: number): number {
  const clamped = Math.max(input, MIN_NORM_POS);
  const bits = floatBits(clamped);
  let e = f32(f32((bits >>> 23) - 127) + 1);
  let x = floatFromBits((bits & ~0x7f800000) | 0x3f000000); // mantissa in [0.5, 1)
  const below = x < SQRT_HALF;
  const tmp = below ? x : 0;
  x = f32(x - 1);
  e = f32(e - (below ? 1 : 0));
  x = f32(x + tmp);
  const z = f32(x * x);
  let y = LOG_P[0] ?? 0;
  for (let k = 1; k < LOG_P.length; k++) y = fmaf32(y, x, LOG_P[k] ?? 0);
  y = f32(y * x);
  y = fmaf32(y, z, f32(e * LOG_Q1));
  y = f32(y - f32(z * 0.5));
  x = f32(x + y);
  x = f32(x + f32(e * LOG_Q2));
  return input <= 0 ? Number.NaN : x;
}

// eslint-disable-next-line no-loss-of-precision -- the Cephes constants digit for digit, rounded to float32 by f32()
const MINUS_DP = [-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8].map(f32);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const FOUR_OVER_PI = f32(1.27323954473516);

/** sincos256_ps for one lane: [sin, cos]. */
function sinCosAvx2(input: number): [number, number] {
  let x = Math.abs(input);
  let j = Math.trunc(f32(x * FOUR_OVER_PI)) | 0;
  j = (j + 1) & ~1;
  const y = j;
  const sinNegative = input < 0 !== ((j & 4) !== 0);
  const cosNegative = (~(j - 2) & 4) !== 0;
  const sinPolyIsSine = (j & 2) === 0;
  for (const dp of MINUS_DP) x = fmaf32(y, dp, x); // extended-precision reduction x - y*pi/4
  const z = f32(x * x);
  let c = fmaf32(COSCOF[0] ?? 0, z, COSCOF[1] ?? 0);
  c = fmaf32(c, z, COSCOF[2] ?? 0);
  c = f32(c * z);
  c = fmaf32(c, z, -f32(z * 0.5));
  c = f32(c + 1);
  let s = fmaf32(SINCOF[0] ?? 0, z, SINCOF[1] ?? 0);
  s = fmaf32(s, z, SINCOF[2] ?? 0);
  s = f32(s * z);
  s = fmaf32(s, x, x);
  let sin = sinPolyIsSine ? s : c;
  let cos = sinPolyIsSine ? c : s;
  if (sinNegative) sin = -sin;
  if (cosNegative) cos = -cos;
  return [sin, cos];
}

const TWO_PI_F32 = f32(2 * Math.PI);

/** normal_fill_16_AVX2: 16 uniforms in place -> 16 normals (mean 0, std 1). */
function normalFill16(block: Float32Array): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - (block[j] ?? 0));
    const u2 = block[j + 8] ?? 0;
    const radius = f32(Math.sqrt(f32(-2 * logAvx2(u1))));
    const [sin, cos] = sinCosAvx2(f32(TWO_PI_F32 * u2));
    block[j] = f32(radius * cos) + 0; // `+ 0` as fmadd(n, 1, 0) turns -0 into +0
    block[j + 8] = f32(radius * sin) + 0;
  }
}

const TWO_POW_MINUS_24 = 2 ** -24;
const TWO_POW_MINUS_53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

export class TorchCpuRng implements Rng {
  private readonly engine: Mt19937;
  private cachedNormal: number | undefined;

  /** `seed` as given to `torch.manual_seed` (a non-negative integer; torch keeps its low 32 bits for mt19937). */
  constructor(seed: number | bigint) {
    const valid = typeof seed === 'bigint' ? seed >= 0n && seed < 1n << 64n : Number.isSafeInteger(seed) && seed >= 0;
    if (!valid) throw invalidParameterError('seed', 'non-negative integer below 2^64', seed);
    this.engine = new Mt19937(Number(BigInt(seed) & 0xffffffffn));
  }

  randn(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) throw invalidParameterError('n', 'non-negative integer', n);
    return n >= 16 ? this.randnVectorised(n) : this.randnScalar(n);
  }

  private uniformFloat(): number {
    return (this.engine.nextUint32() & 0xffffff) * TWO_POW_MINUS_24;
  }

  private uniformDouble(): number {
    const hi = this.engine.nextUint32();
    const lo = this.engine.nextUint32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_MINUS_53;
  }

  private randnVectorised(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(out.subarray(i, i + 16));
    if (n % 16 !== 0) {
      const tail = out.subarray(n - 16);
      for (let i = 0; i < 16; i++) tail[i] = this.uniformFloat();
      normalFill16(tail);
    }
    return out;
  }

  private randnScalar(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (this.cachedNormal !== undefined) {
        out[i] = this.cachedNormal;
        this.cachedNormal = undefined;
        continue;
      }
      const u1 = this.uniformDouble();
      const u2 = this.uniformDouble();
      const radius = Math.sqrt(-2 * Math.log(1 - u2));
      const theta = 2 * Math.PI * u1;
      this.cachedNormal = radius * Math.sin(theta);
      out[i] = radius * Math.cos(theta);
    }
    return out;
  }
}
