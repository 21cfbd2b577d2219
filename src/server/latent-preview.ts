/**
 * A cheap preview of a Stable Diffusion 1.x latent without the VAE: the usual linear map of the four latent channels
 * to RGB (the factors ComfyUI and others use for SD 1.x latent previews), rgb = latent · F, then (rgb + 1) / 2 to
 * [0, 255]. One pixel per latent cell; the page scales it up.
 *
 *   latent [1, 4, h, w] (model space, VAE latent x 0.18215) ──[4x3]──▶ RGB [h, w, 3] in [-1, 1] ──▶ PNG h x w
 */
import sharp from 'sharp';
import { InvalidParameterError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Rows: latent channels 0..3; columns: R, G, B. */
export const SD1_LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** RGB bytes (h x w x 3, row-major) of a [1, 4, h, w] latent. */
export function latentToRgb(latent: Tensor<'float32'>): { pixels: Buffer; width: number; height: number } {
  const [n, c, h, w] = latent.dims;
  if (latent.dims.length !== 4 || n !== 1 || c !== SD1_LATENT_RGB_FACTORS.length || h === undefined || w === undefined) {
    throw new InvalidParameterError(`latent preview: expected a [1, 4, h, w] latent but received dims [${latent.dims.join(', ')}]`, { parameter: 'latent' });
  }
  const plane = h * w;
  const pixels = Buffer.alloc(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) {
      let v = 0;
      for (let ch = 0; ch < c; ch++) v += latent.data[ch * plane + p]! * SD1_LATENT_RGB_FACTORS[ch]![k]!;
      pixels[p * 3 + k] = Math.round(Math.min(Math.max((v + 1) / 2, 0), 1) * 255);
    }
  }
  return { pixels, width: w, height: h };
}

/** The preview as a PNG (latent resolution). */
export async function latentPreviewPng(latent: Tensor<'float32'>): Promise<Buffer> {
  const { pixels, width, height } = latentToRgb(latent);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}
