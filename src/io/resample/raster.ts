/**
 * A decoded image in memory: `height` rows of `width` pixels of `channels` uint8 samples, interleaved (HWC), the
 * layout numpy, PIL and OpenCV images share. The resamplers in this folder read and write it.
 */
import { InvalidParameterError } from '../../errors.js';

export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** `height * width * channels` bytes, row-major, channels interleaved. */
  readonly data: Uint8Array;
}

/** A checked raster (integer positive sizes, data of the right length). */
export function makeRaster(width: number, height: number, channels: number, data?: Uint8Array): Raster {
  for (const [name, value] of [
    ['width', width],
    ['height', height],
    ['channels', channels],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidParameterError(`raster ${name} must be a positive integer, got ${value}`, { parameter: name });
  }
  const length = width * height * channels;
  if (data !== undefined && data.length !== length) {
    throw new InvalidParameterError(`raster data has ${data.length} bytes, expected ${height}x${width}x${channels} = ${length}`);
  }
  return { width, height, channels, data: data ?? new Uint8Array(length) };
}

/** Throws unless `img` is a consistent raster and `width`/`height` are positive integers (the resamplers' inputs). */
export function checkResizeArgs(what: string, img: Raster, width: number, height: number): void {
  makeRaster(img.width, img.height, img.channels, img.data);
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new InvalidParameterError(`${what}: target size must be positive integers, got ${width}x${height}`, { parameter: 'size' });
  }
}

/** A copy of `img` (own buffer). */
export function copyRaster(img: Raster): Raster {
  return { width: img.width, height: img.height, channels: img.channels, data: Uint8Array.from(img.data) };
}
