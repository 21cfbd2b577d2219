/**
 * Images in and out: decode + resize to NCHW float [-1, 1], masks to 0/1 planes, the SAM input, PNG encoding of
 * tensors, and the pictures the CLI writes (grid, mask, correspondence lines).
 *
 * Fit modes (`Fit`), all resizing with our bit-exact port of Pillow's BICUBIC (src/io/resample/pil.ts):
 * - `stretch`: the official loading (utils/image_utils.py `load_size`): np.array(Image.open(p).convert('RGB'))
 *   (alpha dropped without compositing, no EXIF orientation, 16-bit gray clipped: src/io/decode.ts) resized to the
 *   working size, which is then square (size x size), so non-square images are stretched. Reproduces the
 *   reference's pixels exactly (golden group `images`). Its SAM input is the official one too: cv2.imread (EXIF
 *   applied!) + cv2.resize INTER_LINEAR (src/io/resample/cv2.ts), so on a rotated photo the two disagree as they
 *   do officially.
 * - `cover` (the default): EXIF orientation applied once, transparency composited over white; the working size
 *   follows the structure image's aspect; each image is centre-cropped to the working aspect and resized.
 * - `contain`: like cover, but each image is resized to fit inside the working size and padded with white.
 * The reference's `load_size` does NOT centre-crop (the crop is commented out), hence `stretch`. A square 8-bit RGB
 * image without EXIF orientation or transparency gives the official pixels in every mode.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { ImageError, InvalidParameterError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { decodeRgb, type DecodePath } from './decode.js';
import { DEFAULT_FIT, FITS, type Fit } from './fit.js';
import { cv2ResizeLinear } from './resample/cv2.js';
import { pilResize } from './resample/pil.js';
import type { Raster } from './resample/raster.js';

/** An image or mask: a file path or the encoded bytes (PNG, JPEG, WebP, ... anything sharp decodes). */
export type ImageSource = string | Buffer;

export { DEFAULT_FIT, FITS, type Fit } from './fit.js';

export interface LoadOptions {
  /** Default DEFAULT_FIT. */
  fit?: Fit;
  /** Name of the image in error messages (default: the resolved path, or 'image buffer'). */
  label?: string;
}

function loadOptions(options: LoadOptions | string | undefined): { fit: Fit; label: string | undefined } {
  const o = typeof options === 'string' ? { label: options } : (options ?? {});
  const fit = o.fit ?? DEFAULT_FIT;
  if (!FITS.includes(fit))
    throw new InvalidParameterError(`fit must be one of ${FITS.map((f) => `'${f}'`).join(', ')}, got '${String(fit)}'`, { parameter: 'fit' });
  return { fit, label: o.label };
}

export interface Size {
  width: number;
  height: number;
}

function describeSource(source: ImageSource, label?: string): string {
  if (label !== undefined) return label;
  return typeof source === 'string' ? resolve(source) : 'image buffer';
}

function readSource(source: ImageSource, what: string, label?: string): Buffer {
  if (Buffer.isBuffer(source)) return source;
  const name = describeSource(source, label);
  let isFile: boolean;
  try {
    isFile = statSync(source).isFile();
  } catch {
    throw new ImageError(`${name}: ${what} file not found`);
  }
  if (!isFile) throw new ImageError(`${name}: expected ${what} file, found a folder`);
  try {
    return readFileSync(source);
  } catch (cause) {
    throw new ImageError(`${name}: cannot read ${what} file (${(cause as Error).message})`, { cause });
  }
}

async function decoded(source: ImageSource, what: string, label?: string): Promise<{ buffer: Buffer; size: Size }> {
  const buffer = readSource(source, what, label);
  try {
    const meta = await sharp(buffer).metadata();
    if (meta.width === undefined || meta.height === undefined) throw new Error('no dimensions');
    const swapped = (meta.orientation ?? 1) >= 5;
    return { buffer, size: swapped ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height } };
  } catch (cause) {
    throw new ImageError(`${describeSource(source, label)}: not a readable image (${(cause as Error).message}); expected PNG, JPEG, WebP, TIFF, GIF or AVIF`, {
      cause,
    });
  }
}

/** Width and height of an image: after EXIF orientation, except for fit 'stretch' (Pillow ignores it). */
export async function imageSize(source: ImageSource, options?: LoadOptions | string): Promise<Size> {
  const { fit, label } = loadOptions(options);
  const { buffer, size } = await decoded(source, 'image', label);
  if (fit !== 'stretch') return size;
  const meta = await sharp(buffer).metadata();
  return { width: meta.width ?? size.width, height: meta.height ?? size.height };
}

/**
 * An image decoded to 8-bit RGB the way `fit` loads it: 'stretch' = Pillow's open().convert('RGB'); the others =
 * EXIF orientation applied, transparency over white (src/io/decode.ts).
 */
export async function decodeImage(source: ImageSource, options?: LoadOptions | string): Promise<Raster> {
  const { fit, label } = loadOptions(options);
  return decodeWith(source, fit === 'stretch' ? 'pil' : 'oriented', label);
}

async function decodeWith(source: ImageSource, path: DecodePath, label: string | undefined): Promise<Raster> {
  const buffer = readSource(source, 'image', label);
  return decodeRgb(buffer, path, describeSource(source, label));
}

function crop(img: Raster, x0: number, y0: number, width: number, height: number): Raster {
  if (x0 === 0 && y0 === 0 && width === img.width && height === img.height) return img;
  const cn = img.channels;
  const data = new Uint8Array(width * height * cn);
  for (let y = 0; y < height; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * cn, ((y0 + y) * img.width + x0 + width) * cn), y * width * cn);
  return { width, height, channels: cn, data };
}

/**
 * A raster brought to `size` by `fit` with Pillow's BICUBIC (bit-exact port): 'stretch' resizes, 'cover'
 * centre-crops to the target aspect (whole pixels) and resizes, 'contain' resizes to fit inside and pads with
 * `background` (every channel).
 */
export function fitRaster(img: Raster, size: Size, fit: Fit, background = 255): Raster {
  const { width, height } = size;
  if (fit === 'stretch') return pilResize(img, width, height, 'bicubic');
  if (fit === 'cover') {
    const scale = Math.max(width / img.width, height / img.height);
    const cw = Math.min(img.width, Math.max(1, Math.round(width / scale)));
    const ch = Math.min(img.height, Math.max(1, Math.round(height / scale)));
    const cropped = crop(img, Math.floor((img.width - cw) / 2), Math.floor((img.height - ch) / 2), cw, ch);
    return pilResize(cropped, width, height, 'bicubic');
  }
  const scale = Math.min(width / img.width, height / img.height);
  const rw = Math.min(width, Math.max(1, Math.round(img.width * scale)));
  const rh = Math.min(height, Math.max(1, Math.round(img.height * scale)));
  const inner = pilResize(img, rw, rh, 'bicubic');
  if (rw === width && rh === height) return inner;
  const cn = img.channels;
  const data = new Uint8Array(width * height * cn).fill(background);
  const x0 = Math.floor((width - rw) / 2);
  const y0 = Math.floor((height - rh) / 2);
  for (let y = 0; y < rh; y++) data.set(inner.data.subarray(y * rw * cn, (y + 1) * rw * cn), ((y0 + y) * width + x0) * cn);
  return { width, height, channels: cn, data };
}

/** An RGB raster as float [1, 3, H, W] in [-1, 1] (x / 127.5 - 1). */
export function rasterToTensor(img: Raster): Tensor<'float32'> {
  if (img.channels !== 3) throw new ImageError(`expected an RGB raster, got ${img.channels} channels`);
  const plane = img.width * img.height;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) data[c * plane + p] = img.data[p * 3 + c]! / 127.5 - 1;
  }
  return { dtype: 'float32', dims: [1, 3, img.height, img.width], data };
}

/**
 * The SAM input of an image, 8-bit RGB at `size` (default 512 x 512, the official run's). Fit 'stretch': the
 * official one, cv2.imread (EXIF orientation applied, alpha dropped, 16-bit high byte) + cv2.resize INTER_LINEAR.
 * Other fits: exactly the pixels the Stable Diffusion path gets (same orientation, same geometry), so masks line up.
 */
export async function loadSamInput(source: ImageSource, size: number | Size = 512, options?: LoadOptions | string): Promise<Raster> {
  const { fit, label } = loadOptions(options);
  const target = typeof size === 'number' ? { width: size, height: size } : size;
  if (fit === 'stretch') return cv2ResizeLinear(await decodeWith(source, 'cv2', label), target.width, target.height);
  return fitRaster(await decodeWith(source, 'oriented', label), target, fit);
}

/**
 * The full-resolution picture the SAM input is made from: fit 'stretch' = cv2.imread's (EXIF orientation applied, as
 * the official run reads it); the other fits = the oriented decode the Stable Diffusion path uses.
 */
export async function decodeSamSource(source: ImageSource, options?: LoadOptions | string): Promise<Raster> {
  const { fit, label } = loadOptions(options);
  return decodeWith(source, fit === 'stretch' ? 'cv2' : 'oriented', label);
}

/** An image as RGB float [1, 3, H, W] in [-1, 1] (x / 127.5 - 1) at `size`, loaded and resized by `fit` (header). */
export async function loadImage(source: ImageSource, size: Size, options?: LoadOptions | string): Promise<Tensor<'float32'>> {
  const { fit, label } = loadOptions(options);
  return rasterToTensor(fitRaster(await decodeWith(source, fit === 'stretch' ? 'pil' : 'oriented', label), size, fit));
}

/**
 * A mask as float 0/1 [H, W] at `size`: any image, converted to gray (transparent = black), brought to `size` with
 * the same geometry as the images (`fit`; EXIF orientation applied except for 'stretch', like the image; 'contain'
 * pads with black), Pillow BICUBIC, thresholded at gray > 127. An all-zero mask is an error naming the file.
 */
export async function loadMask(source: ImageSource, size: Size, options?: LoadOptions | string): Promise<Tensor<'float32'>> {
  const { fit, label } = loadOptions(options);
  const { buffer } = await decoded(source, 'mask', label);
  let gray: Raster;
  try {
    const pipeline = fit === 'stretch' ? sharp(buffer) : sharp(buffer).rotate();
    const { data, info } = await pipeline.flatten({ background: '#000000' }).grayscale().extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    gray = { width: info.width, height: info.height, channels: 1, data: Uint8Array.from(data.subarray(0, info.width * info.height)) };
  } catch (cause) {
    throw new ImageError(`${describeSource(source, label)}: cannot decode mask (${(cause as Error).message})`, { cause });
  }
  return maskRasterToTensor(gray, size, fit, describeSource(source, label));
}

/**
 * A one-channel mask raster (0..255, e.g. a SAM-HQ mask in its image's frame) as float 0/1 [H, W] at `size`, with the
 * images' geometry (`fit`, Pillow BICUBIC, gray > 127). An all-zero result is an error naming `what`.
 */
export function maskRasterToTensor(mask: Raster, size: Size, fit: Fit, what: string): Tensor<'float32'> {
  if (mask.channels !== 1) throw new ImageError(`${what}: expected a one-channel mask, got ${mask.channels} channels`);
  const { width, height } = size;
  const resized = fitRaster(mask, size, fit, 0);
  const data = Float32Array.from(resized.data, (v) => (v > 127 ? 1 : 0));
  if (!data.some((v) => v === 1)) {
    throw new ImageError(`${what}: mask is empty (no pixel brighter than 127 at ${width}x${height})`, {
      hint: 'a mask is white (or light) on the object and black elsewhere',
    });
  }
  return { dtype: 'float32', dims: [height, width], data };
}

/** [1, 3, H, W] or [3, H, W] float in [-1, 1] -> interleaved RGB bytes, round(clamp(x / 2 + 0.5, 0, 1) * 255). */
export function tensorToRgb(image: Tensor<'float32'>): { pixels: Buffer; size: Size } {
  const dims = image.dims.length === 4 ? image.dims.slice(1) : image.dims;
  const [c, height, width] = dims;
  if (dims.length !== 3 || c !== 3 || height === undefined || width === undefined || (image.dims.length === 4 && image.dims[0] !== 1)) {
    throw new ImageError(`expected an image tensor [1, 3, H, W], got [${image.dims.join(', ')}]`);
  }
  const plane = width * height;
  const pixels = Buffer.alloc(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = Math.min(Math.max((image.data[ch * plane + p] ?? 0) / 2 + 0.5, 0), 1);
      pixels[p * 3 + ch] = Math.round(v * 255);
    }
  }
  return { pixels, size: { width, height } };
}

/** A [-1, 1] image tensor as PNG bytes. */
export async function tensorToPng(image: Tensor<'float32'>): Promise<Buffer> {
  const { pixels, size } = tensorToRgb(image);
  return sharp(pixels, { raw: { width: size.width, height: size.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** A 0/1 mask [H, W] as a grayscale PNG (0 / 255). */
export async function maskToPng(mask: Tensor<'float32'>): Promise<Buffer> {
  const [height, width] = mask.dims;
  if (mask.dims.length !== 2 || height === undefined || width === undefined) throw new ImageError(`expected a mask [H, W], got [${mask.dims.join(', ')}]`);
  const bytes = Buffer.from(Uint8Array.from(mask.data, (v) => Math.round(Math.min(Math.max(v, 0), 1) * 255)));
  return sharp(bytes, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch] ?? ch);
}

export interface GridPanel {
  image: Tensor<'float32'>;
  label?: string;
}

const LABEL_HEIGHT = 24;
const LABEL_FONT_PX = 14;
/** A generous average glyph width of sans-serif text, in em (for fitting a label to its panel). */
const GLYPH_EM = 0.62;

/**
 * One label strip per panel, each its own SVG of the panel's width (so a label can never run into its neighbour),
 * in one font size for all: 14 px, or smaller when the longest label would not fit its panel (64 px panels).
 */
function labelLayers(panels: readonly { left: number; width: number; label: string | undefined }[], top: number): OverlayOptions[] {
  const fits = panels.filter((p) => p.label !== undefined && p.label !== '').map((p) => Math.floor((p.width - 4) / (GLYPH_EM * p.label!.length)));
  const font = Math.max(6, Math.min(LABEL_FONT_PX, ...fits));
  return panels
    .filter((p) => p.label !== undefined && p.label !== '')
    .map((p) => ({
      input: Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="${p.width}" height="${LABEL_HEIGHT}"><text x="${p.width / 2}" y="${Math.round(LABEL_HEIGHT / 2 + font * 0.36)}" text-anchor="middle" font-family="sans-serif" font-size="${font}" fill="#000">${escapeXml(p.label!)}</text></svg>`,
      ),
      left: p.left,
      top,
    }));
}

/** Panels side by side (all the same height), each with an optional label strip underneath. */
export async function gridPng(panels: readonly GridPanel[]): Promise<Buffer> {
  const rgb = panels.map((p) => tensorToRgb(p.image));
  const height = Math.max(...rgb.map((r) => r.size.height));
  const width = rgb.reduce((w, r) => w + r.size.width, 0);
  const labelled = panels.some((p) => p.label !== undefined);
  const total = height + (labelled ? LABEL_HEIGHT : 0);
  const layers: OverlayOptions[] = [];
  const strips: { left: number; width: number; label: string | undefined }[] = [];
  let x = 0;
  for (const [i, r] of rgb.entries()) {
    layers.push({ input: r.pixels, raw: { width: r.size.width, height: r.size.height, channels: 3 }, left: x, top: 0 });
    strips.push({ left: x, width: r.size.width, label: panels[i]?.label });
    x += r.size.width;
  }
  if (labelled) layers.push(...labelLayers(strips, height));
  return sharp({ create: { width, height: total, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toBuffer();
}

/** The match indices of one hooked layer at one iteration: out token -> appearance token (< 0: none). */
export interface TokenMatches {
  /** Token map size of the layer. */
  height: number;
  width: number;
  indices: ArrayLike<number | bigint>;
}

/** Pixel centre of token `index` of an h x w token map drawn at W x H: ((x + 0.5) W / w, (y + 0.5) H / h). */
export function tokenCentre(index: number, map: Size, image: Size): { x: number; y: number } {
  const ty = Math.floor(index / map.width);
  const tx = index % map.width;
  return { x: ((tx + 0.5) * image.width) / map.width, y: ((ty + 0.5) * image.height) / map.height };
}

/** `count` out tokens with a match, evenly spread over the matched ones in token order. */
export function sampleMatchedTokens(indices: ArrayLike<number | bigint>, count: number): number[] {
  const matched: number[] = [];
  for (let i = 0; i < indices.length; i++) if (Number(indices[i]) >= 0) matched.push(i);
  if (matched.length <= count) return matched;
  return Array.from({ length: count }, (_, k) => matched[Math.floor(((k + 0.5) * matched.length) / count)]!);
}

/**
 * The result (left) and the appearance image (right) with coloured lines joining a subsample of out tokens to the
 * appearance token each one took in the matching, and a label strip underneath naming the two panels.
 */
export async function correspondencePng(
  result: Tensor<'float32'>,
  appearance: Tensor<'float32'>,
  matches: TokenMatches,
  count = 24,
  labels: { result: string; appearance: string } = { result: 'result', appearance: 'appearance' },
): Promise<Buffer> {
  const left = tensorToRgb(result);
  const right = tensorToRgb(appearance);
  const { width, height } = left.size;
  const map = { width: matches.width, height: matches.height };
  const lines = sampleMatchedTokens(matches.indices, count).map((token, k, all) => {
    const from = tokenCentre(token, map, left.size);
    const to = tokenCentre(Number(matches.indices[token]), map, right.size);
    const colour = `hsl(${Math.round((360 * k) / Math.max(all.length, 1))}, 90%, 50%)`;
    const x2 = to.x + width;
    return (
      `<line x1="${from.x}" y1="${from.y}" x2="${x2}" y2="${to.y}" stroke="${colour}" stroke-width="1.5"/>` +
      `<circle cx="${from.x}" cy="${from.y}" r="3" fill="${colour}"/><circle cx="${x2}" cy="${to.y}" r="3" fill="${colour}"/>`
    );
  });
  const panelsHeight = Math.max(height, right.size.height);
  const total = { width: width + right.size.width, height: panelsHeight + LABEL_HEIGHT };
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${total.width}" height="${panelsHeight}">${lines.join('')}</svg>`;
  return sharp({ create: { ...total, channels: 3, background: '#ffffff' } })
    .composite([
      { input: left.pixels, raw: { ...left.size, channels: 3 }, left: 0, top: 0 },
      { input: right.pixels, raw: { ...right.size, channels: 3 }, left: width, top: 0 },
      { input: Buffer.from(svg), left: 0, top: 0 },
      ...labelLayers(
        [
          { left: 0, width, label: labels.result },
          { left: width, width: right.size.width, label: labels.appearance },
        ],
        panelsHeight,
      ),
    ])
    .png()
    .toBuffer();
}
