/**
 * The eta = 1 DDPM step with an explicit noise map, shared by the edit-friendly inversion and the transfer loop
 * (docs/method.md §2-3, quirk 12), plus the pieces of the inversion built on it.
 *
 * Every operation is rounded to float32 in the order PyTorch evaluates the official code
 * (eye_for_an_eye `perform_ddpm_step`, `ddpm_inversion.inversion_forward_process` / `sample_xts_from_x0`): scalars
 * such as `1 - ab` or `ab ** 0.5` are 0-d float32 tensors there, and each tensor op rounds once. With float32
 * inputs, `Math.fround` of a double +, -, *, / or sqrt is the correctly rounded float32 result, so the outputs are
 * bit-identical to the reference wherever its kernels do not fuse operations.
 */
import { invalidParameterError } from '../errors.js';

const f32 = Math.fround;

/** Scalar coefficients of one step from t to its previous timestep, as float32 values. */
export interface StepCoefficients {
  /** sqrt(1 - ab_t) */
  readonly sqrtBeta: number;
  /** sqrt(ab_t) */
  readonly sqrtAlpha: number;
  /** sqrt(ab_prev) */
  readonly sqrtAlphaPrev: number;
  /** sqrt(1 - ab_prev - var): the weight of eps in the direction term */
  readonly directionScale: number;
  /** sqrt(var) = sigma_t for eta = 1 */
  readonly sigma: number;
}

/**
 * `var = (1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p)` and the other scalars of the step, in float32.
 * `alphaProd` and `alphaProdPrev` are alphas_cumprod[t] and alphas_cumprod[t_prev] (final_alpha_cumprod if t_prev < 0).
 */
export function stepCoefficients(alphaProd: number, alphaProdPrev: number): StepCoefficients {
  if (!(alphaProd > 0 && alphaProd < 1)) throw invalidParameterError('alphaProd', 'number in (0, 1)', alphaProd);
  if (!(alphaProdPrev > 0 && alphaProdPrev <= 1)) {
    throw invalidParameterError('alphaProdPrev', 'number in (0, 1]', alphaProdPrev);
  }
  const ab = f32(alphaProd);
  const abPrev = f32(alphaProdPrev);
  const betaProd = f32(1 - ab);
  const betaProdPrev = f32(1 - abPrev);
  const variance = f32(f32(betaProdPrev / betaProd) * f32(1 - f32(ab / abPrev)));
  return {
    sqrtBeta: f32(Math.sqrt(betaProd)),
    sqrtAlpha: f32(Math.sqrt(ab)),
    sqrtAlphaPrev: f32(Math.sqrt(abPrev)),
    directionScale: f32(Math.sqrt(f32(f32(1 - abPrev) - variance))),
    sigma: f32(Math.sqrt(variance)),
  };
}

function checkSameLength(named: Record<string, ArrayLike<number>>, reference: string): number {
  const n = named[reference]?.length ?? 0;
  for (const [name, values] of Object.entries(named)) {
    if (values.length !== n) throw invalidParameterError(`${name}.length`, `${n} (the length of ${reference})`, values.length);
  }
  return n;
}

/** mu = sqrt(ab_p) x0_hat + sqrt(1 - ab_p - var) eps with x0_hat = (x - sqrt(1 - ab) eps) / sqrt(ab), per element. */
function meanOfPrevious(c: StepCoefficients, sample: number, eps: number): number {
  const x0Hat = f32(f32(sample - f32(c.sqrtBeta * eps)) / c.sqrtAlpha);
  return f32(f32(c.sqrtAlphaPrev * x0Hat) + f32(c.directionScale * eps));
}

export interface DdpmStepInput {
  /** x_t */
  readonly sample: Float32Array;
  /** the (guided) noise prediction eps at t */
  readonly noisePred: Float32Array;
  /** the noise map z of this step (from the inversion) */
  readonly z: Float32Array;
  /** alphas_cumprod[t] */
  readonly alphaProd: number;
  /** alphas_cumprod[t_prev], or final_alpha_cumprod when t_prev < 0 */
  readonly alphaProdPrev: number;
}

/** x_prev = sqrt(ab_p) x0_hat + sqrt(1 - ab_p - var) eps + sqrt(var) z (eta = 1). */
export function ddpmStep(input: DdpmStepInput): Float32Array {
  const { sample, noisePred, z } = input;
  const n = checkSameLength({ sample, noisePred, z }, 'sample');
  const c = stepCoefficients(input.alphaProd, input.alphaProdPrev);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const mu = meanOfPrevious(c, sample[i] ?? 0, noisePred[i] ?? 0);
    out[i] = f32(mu + f32(c.sigma * (z[i] ?? 0)));
  }
  return out;
}

export interface InversionNoiseInput {
  /** xts[idx], the noisy latent at t */
  readonly xt: Float32Array;
  /** xts[idx + 1], the latent at the previous (smaller) timestep */
  readonly xtPrev: Float32Array;
  /** the guided noise prediction at xts[idx] */
  readonly noisePred: Float32Array;
  readonly alphaProd: number;
  readonly alphaProdPrev: number;
}

export interface InversionNoise {
  /** z = (xtPrev - mu) / sigma */
  readonly z: Float32Array;
  /** mu, the deterministic part of the step from xt */
  readonly mu: Float32Array;
  /** sigma = sqrt(var) */
  readonly sigma: number;
}

/** One iteration of the edit-friendly inversion: the noise map that makes the eta = 1 step land on xtPrev. */
export function inversionNoise(input: InversionNoiseInput): InversionNoise {
  const { xt, xtPrev, noisePred } = input;
  const n = checkSameLength({ xt, xtPrev, noisePred }, 'xt');
  const c = stepCoefficients(input.alphaProd, input.alphaProdPrev);
  const mu = new Float32Array(n);
  const z = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const m = meanOfPrevious(c, xt[i] ?? 0, noisePred[i] ?? 0);
    mu[i] = m;
    z[i] = f32(f32((xtPrev[i] ?? 0) - m) / c.sigma);
  }
  return { z, mu, sigma: c.sigma };
}

/**
 * docs/method.md §2, step 1: `xts[i] = sqrt(ab[t_i]) x0 + sqrt(1 - ab[t_i]) noise[i]` for each timestep t_i (in the order
 * of `alphaProds`, i.e. of the timesteps), followed by x0 itself: N + 1 entries, the last one is x0.
 * `noises[i]` belongs to timestep i (the reference draws them from the smallest timestep up; replaying recorded
 * draws in this indexing reproduces its xts bit for bit).
 */
export function sampleXtsFromX0(x0: Float32Array, alphaProds: readonly number[], noises: readonly Float32Array[]): Float32Array[] {
  if (noises.length !== alphaProds.length) {
    throw invalidParameterError('noises.length', `${alphaProds.length} (one per timestep)`, noises.length);
  }
  const xts = alphaProds.map((alphaProd, i) => {
    const noise = noises[i] ?? new Float32Array(0);
    checkSameLength({ x0, [`noises[${i}]`]: noise }, 'x0');
    const sqrtAlpha = f32(Math.sqrt(f32(alphaProd)));
    const sqrtBeta = f32(Math.sqrt(f32(1 - f32(alphaProd))));
    const xt = new Float32Array(x0.length);
    for (let k = 0; k < x0.length; k++) xt[k] = f32(f32((x0[k] ?? 0) * sqrtAlpha) + f32((noise[k] ?? 0) * sqrtBeta));
    return xt;
  });
  xts.push(Float32Array.from(x0));
  return xts;
}
