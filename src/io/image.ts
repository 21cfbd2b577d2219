/**
 * Images in and out (sharp): decode + resize to NCHW float [-1, 1], masks to 0/1 planes, PNG encoding of tensors,
 * and the pictures the CLI writes (grid, mask, correspondence lines).
 *
 * Resizing: `fit: 'cover'` (scale to cover the working size, which keeps the structure image's aspect, then centre
 * crop), with sharp's `cubic` kernel (Catmull-Rom, a = -0.5), the filter family of PIL's default BICUBIC. EXIF
 * orientation is applied first. This is NOT the reference's loading: its `load_size` stretches every image to
 * 512x512 (the centre crop there is commented out), drops alpha and ignores EXIF (docs/method.md §8).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { ImageError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

/** An image or mask: a file path or the encoded bytes (PNG, JPEG, WebP, ... anything sharp decodes). */
export type ImageSource = string | Buffer;

export const RESIZE_KERNEL = 'cubic' as const;

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

/** Width and height of an image (after EXIF orientation). */
export async function imageSize(source: ImageSource, label?: string): Promise<Size> {
  return (await decoded(source, 'image', label)).size;
}

/** An image as RGB float [1, 3, H, W] in [-1, 1] (x / 127.5 - 1), resized (cover, cubic) to `size`. */
export async function loadImage(source: ImageSource, size: Size, label?: string): Promise<Tensor<'float32'>> {
  const { buffer } = await decoded(source, 'image', label);
  const { width, height } = size;
  let raw: Buffer;
  try {
    raw = await sharp(buffer)
      .rotate()
      .flatten({ background: '#ffffff' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: 'cover', kernel: RESIZE_KERNEL })
      .raw()
      .toBuffer();
  } catch (cause) {
    throw new ImageError(`${describeSource(source, label)}: cannot decode image (${(cause as Error).message})`, { cause });
  }
  const plane = width * height;
  const data = new Float32Array(3 * plane); // [3, H, W]
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) data[c * plane + p] = (raw[p * 3 + c] ?? 0) / 127.5 - 1;
  }
  return { dtype: 'float32', dims: [1, 3, height, width], data };
}

/**
 * A mask as float 0/1 [H, W] at `size`: any image, converted to gray (transparent = black), resized like the images
 * (cover, cubic) and thresholded at gray > 127. An all-zero mask is an error naming the file.
 */
export async function loadMask(source: ImageSource, size: Size, label?: string): Promise<Tensor<'float32'>> {
  const { buffer } = await decoded(source, 'mask', label);
  const { width, height } = size;
  let raw: Buffer;
  try {
    raw = await sharp(buffer)
      .rotate()
      .flatten({ background: '#000000' })
      .grayscale()
      .resize(width, height, { fit: 'cover', kernel: RESIZE_KERNEL })
      .extractChannel(0)
      .raw()
      .toBuffer();
  } catch (cause) {
    throw new ImageError(`${describeSource(source, label)}: cannot decode mask (${(cause as Error).message})`, { cause });
  }
  const data = Float32Array.from(raw.subarray(0, width * height), (v) => (v > 127 ? 1 : 0));
  if (!data.some((v) => v === 1)) {
    throw new ImageError(`${describeSource(source, label)}: mask is empty (no pixel brighter than 127 at ${width}x${height})`, {
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
