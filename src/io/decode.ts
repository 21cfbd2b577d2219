/**
 * Decoding an image file to 8-bit RGB the way each loader of the official code does it, and our own way:
 *
 * - `pil`: `np.array(Image.open(p).convert('RGB'))` (Pillow 9.4): alpha DROPPED without compositing, palette
 *   looked up ignoring tRNS, 16-bit gray (mode I) CLIPPED to 0..255, 16-bit colour / gray+alpha the high byte,
 *   gray of 1/2/4 bits scaled to 0..255, gray replicated to R = G = B, no EXIF orientation.
 * - `cv2`: `cv2.imread(p, IMREAD_COLOR)` (OpenCV 4.6, channels given here in RGB order): the same except that
 *   16-bit gray takes the high byte and a JPEG's EXIF orientation is applied (OpenCV 4.6 reads EXIF from JPEG
 *   only).
 * - `oriented` (ours, for the aspect-preserving fit modes): EXIF orientation applied once (JPEG, or a PNG's eXIf),
 *   transparency (alpha, tRNS) composited over white, 16-bit scaled to 8 bits (round(v / 257)).
 *
 * PNG goes through our own decoder (src/io/png.ts); JPEG through sharp (libjpeg-turbo defaults: islow IDCT, fancy
 * upsampling, the decoder Pillow and OpenCV use), never auto-rotated, orientation applied by us; any other format
 * sharp reads is decoded by sharp (alpha dropped for `pil` / `cv2`, flattened over white for `oriented`; these are
 * not checked against the reference).
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { ImageError } from '../errors.js';
import { decodePng, isPng, type PngImage } from './png.js';
import type { Raster } from './resample/raster.js';

export type DecodePath = 'pil' | 'cv2' | 'oriented';

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Sub-8-bit gray to 0..255 (what Pillow's L;2 / L;4 / "1" unpackers and libpng's expand give). */
function scaleLowDepth(v: number, depth: number): number {
  return depth >= 8 ? v : Math.round((v * 255) / ((1 << depth) - 1));
}

/** PNG samples to 8-bit RGB by one of the loaders. */
export function pngToRgb(png: PngImage, path: DecodePath): Raster {
  const { width, height, channels, samples, bitDepth: depth, colorType } = png;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const sixteen = depth === 16;
  const to8 = (v: number): number => (sixteen ? (path === 'oriented' ? Math.round(v / 257) : v >> 8) : v);
  const max = sixteen ? 65535 : 255;
  const alphaOf = (i: number): number | undefined => {
    if (path !== 'oriented') return undefined;
    const t = png.transparency;
    if (colorType === 4 || colorType === 6) return samples[i * channels + channels - 1]!;
    if (t === undefined) return undefined;
    if (colorType === 3) {
      const index = samples[i]!;
      return index < t.length ? Math.round((t[index]! * max) / 255) : max;
    }
    const key = (k: number): number => ((t[2 * k] ?? 0) << 8) | (t[2 * k + 1] ?? 0);
    if (colorType === 0) return samples[i] === key(0) ? 0 : max;
    return samples[i * 3] === key(0) && samples[i * 3 + 1] === key(1) && samples[i * 3 + 2] === key(2) ? 0 : max;
  };
  for (let i = 0; i < n; i++) {
    let r: number;
    let g: number;
    let b: number;
    if (colorType === 3) {
      const p = png.palette!;
      const index = samples[i]!;
      r = p[index * 3]!;
      g = p[index * 3 + 1]!;
      b = p[index * 3 + 2]!;
    } else if (colorType === 0 || colorType === 4) {
      const v = samples[i * channels]!;
      let gray: number;
      if (depth < 8) gray = scaleLowDepth(v, depth);
      else if (sixteen && colorType === 0 && path === 'pil')
        gray = v > 255 ? 255 : v; // mode I -> RGB clips
      else gray = to8(v);
      r = g = b = gray;
    } else {
      r = to8(samples[i * channels]!);
      g = to8(samples[i * channels + 1]!);
      b = to8(samples[i * channels + 2]!);
    }
    const alpha = alphaOf(i);
    if (alpha !== undefined && alpha !== max) {
      // Over white, in the stored precision: c * a + 1 * (1 - a).
      const a = alpha / max;
      r = Math.round(r * a + 255 * (1 - a));
      g = Math.round(g * a + 255 * (1 - a));
      b = Math.round(b * a + 255 * (1 - a));
    }
    out[i * 3] = r;
    out[i * 3 + 1] = g;
    out[i * 3 + 2] = b;
  }
  const raster: Raster = { width, height, channels: 3, data: out };
  return path === 'oriented' && png.orientation !== undefined ? applyOrientation(raster, png.orientation) : raster;
}

/**
 * EXIF orientation 1..8 applied to a raster (what cv2.imread and every photo viewer do): 2 mirror, 3 rotate 180,
 * 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
export function applyOrientation(img: Raster, orientation: number): Raster {
  if (orientation <= 1 || orientation > 8) return img;
  const { width: w, height: h, channels: cn, data } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2:
          [sx, sy] = [w - 1 - x, y];
          break;
        case 3:
          [sx, sy] = [w - 1 - x, h - 1 - y];
          break;
        case 4:
          [sx, sy] = [x, h - 1 - y];
          break;
        case 5:
          [sx, sy] = [y, x];
          break;
        case 6:
          [sx, sy] = [y, h - 1 - x];
          break;
        case 7:
          [sx, sy] = [w - 1 - y, h - 1 - x];
          break;
        default:
          [sx, sy] = [w - 1 - y, x];
      }
      const o = (y * ow + x) * cn;
      const s = (sy * w + sx) * cn;
      for (let c = 0; c < cn; c++) out[o + c] = data[s + c]!;
    }
  }
  return { width: ow, height: oh, channels: cn, data: out };
}

function toRgb(raw: Uint8Array, width: number, height: number, channels: number, name: string): Raster {
  if (channels === 3) return { width, height, channels: 3, data: Uint8Array.from(raw.subarray(0, width * height * 3)) };
  if (channels !== 1 && channels !== 2) throw new ImageError(`${name}: decoded to ${channels} channels, expected gray or RGB`);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) out.fill(raw[i * channels]!, i * 3, i * 3 + 3);
  return { width, height, channels: 3, data: out };
}

async function decodeJpeg(bytes: Buffer, path: DecodePath, name: string): Promise<Raster> {
  let meta: Metadata;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    meta = await sharp(bytes).metadata();
    if (meta.space === 'cmyk') {
      throw new ImageError(`${name}: CMYK JPEG is not supported`, { hint: 'save the image as an RGB JPEG or a PNG' });
    }
    raw = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  } catch (cause) {
    if (cause instanceof ImageError) throw cause;
    throw new ImageError(`${name}: not a readable JPEG (${(cause as Error).message})`, { cause });
  }
  const rgb = toRgb(raw.data, raw.info.width, raw.info.height, raw.info.channels, name);
  return path === 'pil' ? rgb : applyOrientation(rgb, meta.orientation ?? 1);
}

async function decodeOther(bytes: Buffer, path: DecodePath, name: string): Promise<Raster> {
  try {
    let pipeline = sharp(bytes);
    pipeline = path === 'oriented' ? pipeline.rotate().flatten({ background: '#ffffff' }) : pipeline.removeAlpha();
    const { data, info } = await pipeline.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return toRgb(data, info.width, info.height, info.channels, name);
  } catch (cause) {
    throw new ImageError(`${name}: not a readable image (${(cause as Error).message}); expected PNG, JPEG, WebP, TIFF, GIF or AVIF`, { cause });
  }
}

/** An image file's bytes decoded to 8-bit RGB by `path`; `name` (the file) is in every error. */
export async function decodeRgb(bytes: Buffer, path: DecodePath, name: string): Promise<Raster> {
  if (isPng(bytes)) return pngToRgb(decodePng(bytes, name), path);
  if (isJpeg(bytes)) return decodeJpeg(bytes, path, name);
  return decodeOther(bytes, path, name);
}

/**
 * `np.array(Image.open(p))` of a PNG, mode-native (Pillow 9.4): gray 1 bit -> bool (mode "1"), 2/4/8 bits -> uint8
 * (mode L, scaled), 16 bits -> int32 (mode I, values as stored); palette -> the indices (mode P); gray+alpha,
 * RGB, RGBA -> uint8 with 16-bit samples reduced to their high byte. The diagnostic `pil_decoded` tensors.
 */
export function pilArray(png: PngImage): { dtype: 'uint8' | 'int32' | 'bool'; dims: number[]; data: Uint8Array | Int32Array } {
  const { width, height, channels, samples, bitDepth: depth, colorType } = png;
  const dims = channels === 1 ? [height, width] : [height, width, channels];
  if (colorType === 3) return { dtype: 'uint8', dims, data: Uint8Array.from(samples) };
  if (colorType === 0) {
    if (depth === 16) return { dtype: 'int32', dims, data: Int32Array.from(samples) };
    if (depth === 1) return { dtype: 'bool', dims, data: Uint8Array.from(samples) };
    return { dtype: 'uint8', dims, data: Uint8Array.from(samples, (v) => scaleLowDepth(v, depth)) };
  }
  return { dtype: 'uint8', dims, data: depth === 16 ? Uint8Array.from(samples, (v) => v >> 8) : Uint8Array.from(samples) };
}
