/**
 * Edit-friendly DDPM inversion (eta = 1) of a real image's latent, as the reference runs it (docs/method.md §2,
 * quirk 13): noisy latents xts sampled independently per timestep from x0, then, from the smallest timestep
 * up, the noise map z that makes the eta = 1 step from xts[i] land exactly on xts[i + 1].
 */
import { AbortError, InvalidParameterError } from '../errors.js';
import type { UNetRunner } from '../runtime/unet-runner.js';
import type { Rng } from '../tensor/rng.js';
import { concatRows, type Tensor } from '../tensor/tensor.js';
import type { DdimSchedule } from './ddim-schedule.js';
import { inversionNoise, sampleXtsFromX0 } from './ddpm-step.js';
import { classifierFreeGuidance } from './guidance.js';

/**
 * The reference's inversion encodes with a hard-coded 0.18215 whatever the VAE config says (docs/method.md, quirk 13;
 * decoding uses the config's scaling_factor). Equal to SD-1.x/2.x's scaling_factor; kept for other VAEs.
 */
export const INVERSION_LATENT_SCALE = 0.18215;

/** A latent encoded with the VAE's `scalingFactor`, rescaled to the inversion's fixed 0.18215. */
export function toInversionLatent(latent: Tensor<'float32'>, scalingFactor: number): Tensor<'float32'> {
  if (scalingFactor === INVERSION_LATENT_SCALE) return latent;
  const ratio = INVERSION_LATENT_SCALE / scalingFactor;
  return { dtype: 'float32', dims: latent.dims, data: latent.data.map((v) => Math.fround(v * ratio)) };
}

/** eps for [uncond, cond] at one latent: the UNet called on a batch of 2 with the two prompt embeddings. */
export type GuidedNoise = (latent: Tensor<'float32'>, timestep: number) => Promise<{ uncond: Float32Array; cond: Float32Array }>;

/**
 * GuidedNoise from a UNet and the [uncond, cond] text embeddings [2, T, D]: the latent twice in one call, no processor
 * feeds (every processor neutral, as in the reference's inversion, which runs with the method's UNet switched off).
 */
export function guidedUNetNoise(unet: UNetRunner, text: Tensor<'float32'>): GuidedNoise {
  if (text.dims[0] !== 2) throw new InvalidParameterError(`guided noise needs [uncond, cond] embeddings, got batch ${text.dims[0]}`);
  return async (latent, timestep) => {
    const [, ...dims] = latent.dims;
    const n = latent.data.length;
    const r = await unet.call({
      sample: { dtype: 'float32', dims: [2, ...dims], data: concatRows([latent.data, latent.data]) },
      timestep,
      encoderHiddenStates: text,
    });
    return { uncond: r.noise.data.slice(0, n), cond: r.noise.data.slice(n, 2 * n) };
  };
}

export interface InversionOptions {
  numSteps: number;
  /** cfg_scale_src: 3.5 in the reference. */
  guidanceScale: number;
  /** The N standard normal draws, indexed like the timesteps (noises[i] belongs to timesteps[i]), or an Rng. */
  noise: readonly Float32Array[] | Rng;
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal | undefined;
}

export interface InversionResult {
  /** N + 1 latents, ordered like the timesteps; the last one is x0. */
  xts: Float32Array[];
  /** N noise maps; zs[N - 1] = 0. */
  zs: Float32Array[];
  /** The noise draws used (recorded so that runs can be replayed). */
  noise: Float32Array[];
}

/** Draw the N noise maps in the reference's order: from the smallest timestep (index N - 1) up. */
export function drawInversionNoise(rng: Rng, n: number, size: number): Float32Array[] {
  const out: Float32Array[] = new Array<Float32Array>(n);
  for (let i = n - 1; i >= 0; i--) out[i] = rng.randn(size);
  return out;
}

export async function invert(x0: Tensor<'float32'>, schedule: DdimSchedule, predict: GuidedNoise, options: InversionOptions): Promise<InversionResult> {
  const { numSteps } = options;
  if (x0.dims[0] !== 1) throw new InvalidParameterError(`inversion takes one latent [1, C, h, w], got batch ${x0.dims[0]}`);
  const size = x0.data.length;
  const timesteps = schedule.timesteps(numSteps);
  const noise = Array.isArray(options.noise) ? [...(options.noise as readonly Float32Array[])] : drawInversionNoise(options.noise as Rng, numSteps, size);
  if (noise.length !== numSteps || noise.some((n) => n.length !== size)) {
    throw new InvalidParameterError(`inversion needs ${numSteps} noise maps of ${size} values`);
  }
  const xts = sampleXtsFromX0(
    x0.data,
    timesteps.map((t) => schedule.alphaCumprodAt(t)),
    noise,
  );
  const zs: Float32Array[] = new Array<Float32Array>(numSteps);
  for (let k = 0; k < numSteps; k++) {
    if (options.signal?.aborted === true) throw new AbortError('inversion aborted');
    const idx = numSteps - 1 - k;
    const t = timesteps[idx]!;
    const xt = xts[idx]!;
    const { uncond, cond } = await predict({ dtype: 'float32', dims: x0.dims, data: xt }, t);
    const eps = classifierFreeGuidance(uncond, cond, options.guidanceScale);
    const step = inversionNoise({
      xt,
      xtPrev: xts[idx + 1]!,
      noisePred: eps,
      alphaProd: schedule.alphaCumprodAt(t),
      alphaProdPrev: schedule.alphaCumprodAt(schedule.prevTimestep(t, numSteps)),
    });
    zs[idx] = step.z;
    // The reference re-writes xts[idx + 1] = mu + sigma z (equal to the sampled value up to rounding).
    const rewritten = new Float32Array(size);
    for (let i = 0; i < size; i++) rewritten[i] = Math.fround(step.mu[i]! + Math.fround(step.sigma * step.z[i]!));
    xts[idx + 1] = rewritten;
    options.onStep?.(k + 1, numSteps);
  }
  zs[numSteps - 1] = new Float32Array(size);
  return { xts, zs, noise };
}
