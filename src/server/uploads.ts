/**
 * Uploaded images: base64 in JSON, checked by content (magic bytes of PNG, JPEG or WebP, then a full header decode
 * by sharp) and by size (bytes and pixels), before anything is queued or written.
 */
import sharp from 'sharp';
import { InvalidParameterError } from '../errors.js';

export type ImageKind = 'png' | 'jpeg' | 'webp';

export interface UploadLimits {
  /** Decoded bytes per image. */
  maxBytes: number;
  /** Longest side in pixels. */
  maxSide: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = Object.freeze({ maxBytes: 16 * 1024 * 1024, maxSide: 4096 });

export interface Upload {
  data: Buffer;
  kind: ImageKind;
  width: number;
  height: number;
}

/** The image type from the first bytes (PNG, JPEG, WebP), or undefined. */
export function sniffImage(data: Uint8Array): ImageKind | undefined {
  const starts = (bytes: readonly number[], at = 0): boolean => bytes.every((b, i) => data[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (starts([0xff, 0xd8, 0xff])) return 'jpeg';
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  return undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decode and check one uploaded image given as base64 (optionally a `data:image/...;base64,` URL). */
export async function readUpload(field: string, value: unknown, limits: UploadLimits = DEFAULT_UPLOAD_LIMITS): Promise<Upload> {
  if (typeof value !== 'string' || value === '') throw new InvalidParameterError(`${field}: expected a base64-encoded image (string)`, { parameter: field });
  const text = value.startsWith('data:') ? value.slice(value.indexOf(',') + 1) : value;
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new InvalidParameterError(`${field}: not valid base64`, { parameter: field });
  if ((text.length / 4) * 3 > limits.maxBytes + 2) {
    throw new InvalidParameterError(`${field}: image larger than the limit of ${limits.maxBytes} bytes`, { parameter: field });
  }
  const data = Buffer.from(text, 'base64');
  const kind = sniffImage(data);
  if (kind === undefined) throw new InvalidParameterError(`${field}: not a PNG, JPEG or WebP image (checked by its first bytes)`, { parameter: field });
  let width: number | undefined;
  let height: number | undefined;
  try {
    const meta = await sharp(data).metadata();
    width = meta.width;
    height = meta.height;
    // Decode fully so that a truncated file fails here, not in the worker.
    await sharp(data).raw().toBuffer();
  } catch (cause) {
    throw new InvalidParameterError(`${field}: ${kind.toUpperCase()} image that cannot be decoded (${(cause as Error).message})`, { parameter: field });
  }
  if (width === undefined || height === undefined) throw new InvalidParameterError(`${field}: image without dimensions`, { parameter: field });
  if (Math.max(width, height) > limits.maxSide) {
    throw new InvalidParameterError(`${field}: image of ${width}x${height} pixels is larger than the limit of ${limits.maxSide} pixels per side`, {
      parameter: field,
    });
  }
  return { data, kind, width, height };
}
