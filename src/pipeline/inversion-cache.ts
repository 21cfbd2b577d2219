/**
 * The inversion cache: (xts, zs) of one image saved as `<cacheDir>/inversions/<key>.safetensors`, as the reference
 * caches its inversions. The key is a sha256 over everything the inversion depends on: the resized pixels, the
 * model (weights identity of the VAE, text encoder and UNet, and the graph builder's code digest), the number of
 * steps, the guidance, the prompt, the seed, the image's role (which noise draws it got) and the working size.
 * Files are written atomically (writeSafetensors); an unreadable or mismatching entry is treated as a miss.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openTensorSource, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Bump when the inversion's numerics change. */
export const INVERSION_CACHE_VERSION = 1;

export interface InversionKeyParts {
  pixels: Float32Array;
  model: unknown;
  numSteps: number;
  guidance: number;
  prompt: string;
  seed: number;
  role: 'app' | 'struct';
  width: number;
  height: number;
}

export function inversionCacheKey(parts: InversionKeyParts): string {
  const { pixels, ...rest } = parts;
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ version: INVERSION_CACHE_VERSION, ...rest }));
  hash.update(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength));
  return hash.digest('hex');
}

export interface CachedInversion {
  xts: Float32Array[];
  zs: Float32Array[];
}

export function inversionCachePath(cacheDir: string, key: string): string {
  return join(cacheDir, 'inversions', `${key}.safetensors`);
}

function split(t: Tensor, count: number, size: number): Float32Array[] | undefined {
  if (t.dtype !== 'float32' || t.data.length !== count * size) return undefined;
  const data = t.data as Float32Array;
  return Array.from({ length: count }, (_, i) => data.slice(i * size, (i + 1) * size));
}

/** The cached inversion for `key`, or undefined (absent, unreadable or of the wrong shape). */
export function readCachedInversion(cacheDir: string, key: string, numSteps: number, latentSize: number): CachedInversion | undefined {
  const path = inversionCachePath(cacheDir, key);
  if (!existsSync(path)) return undefined;
  try {
    const source = openTensorSource(path);
    try {
      const xts = split(source.read('xts'), numSteps + 1, latentSize);
      const zs = split(source.read('zs'), numSteps, latentSize);
      return xts !== undefined && zs !== undefined ? { xts, zs } : undefined;
    } finally {
      source.close();
    }
  } catch {
    return undefined;
  }
}

function stack(rows: readonly Float32Array[], dims: readonly number[]): Tensor<'float32'> {
  const size = rows[0]?.length ?? 0;
  const data = new Float32Array(rows.length * size);
  rows.forEach((r, i) => data.set(r, i * size));
  return { dtype: 'float32', dims: [rows.length, ...dims], data };
}

export function writeCachedInversion(
  cacheDir: string,
  key: string,
  inversion: CachedInversion,
  latentDims: readonly number[],
  metadata: Record<string, string>,
): string {
  const path = inversionCachePath(cacheDir, key);
  mkdirSync(join(cacheDir, 'inversions'), { recursive: true });
  writeSafetensors(path, { xts: stack(inversion.xts, latentDims), zs: stack(inversion.zs, latentDims) }, metadata);
  return path;
}
