/**
 * Classifier-free guidance: `eps = e_u + g (e_c - e_u)`, rounded per op in float32 as
 * `noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)` is in PyTorch.
 */
import { invalidParameterError } from '../errors.js';

const f32 = Math.fround;

export function classifierFreeGuidance(uncond: Float32Array, cond: Float32Array, scale: number): Float32Array {
  if (uncond.length !== cond.length) {
    throw invalidParameterError('cond.length', `${uncond.length} (the length of uncond)`, cond.length);
  }
  if (!Number.isFinite(scale)) throw invalidParameterError('scale', 'finite number', scale);
  // torch multiplies a float32 tensor by a Python float scalar in float32 (the scalar is cast first)
  const g = f32(scale);
  const out = new Float32Array(uncond.length);
  for (let i = 0; i < out.length; i++) {
    const u = uncond[i] ?? 0;
    out[i] = f32(u + f32(g * f32((cond[i] ?? 0) - u)));
  }
  return out;
}
