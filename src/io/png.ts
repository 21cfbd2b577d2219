/**
 * A PNG decoder of our own (node:zlib for the inflate), so the official loaders can be copied exactly: it returns
 * the stored samples at their native bit depth (palette indices for palette images, 16-bit values as they are),
 * the palette and the tRNS chunk untouched, and the EXIF orientation of an eXIf chunk. What each loader then
 * makes of them (Pillow's convert('RGB'), cv2.imread, our own oriented path) is in src/io/decode.ts.
 *
 * All of PNG's colour types and bit depths, both interlace methods (none, Adam7), CRCs checked; APNG frames and
 * ancillary chunks other than PLTE / tRNS / eXIf are ignored. Errors are ImageErrors naming the image.
 */
import { inflateSync } from 'node:zlib';
import { ImageError } from '../errors.js';

export type PngColorType = 0 | 2 | 3 | 4 | 6;

export interface PngImage {
  readonly width: number;
  readonly height: number;
  readonly bitDepth: 1 | 2 | 4 | 8 | 16;
  /** 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA. */
  readonly colorType: PngColorType;
  /** Samples per pixel as stored: 1, 3, 1, 2, 4. */
  readonly channels: number;
  /** height x width x channels samples at the native depth (palette indices for type 3), row-major. */
  readonly samples: Uint8Array | Uint16Array;
  /** PLTE entries as RGB triples (type 3; also allowed, and ignored by decoders, for types 2 and 6). */
  readonly palette: Uint8Array | undefined;
  /** The raw tRNS chunk: alpha per palette entry (type 3) or the transparent gray / RGB value (types 0, 2). */
  readonly transparency: Uint8Array | undefined;
  /** EXIF Orientation (1..8) of an eXIf chunk, when there is one. */
  readonly orientation: number | undefined;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const CHANNELS: Record<PngColorType, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<PngColorType, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/** The Orientation tag (0x0112) of a TIFF-structured EXIF block (as in eXIf or after JPEG's "Exif\0\0"). */
export function exifOrientation(tiff: Uint8Array): number | undefined {
  if (tiff.length < 8) return undefined;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return undefined;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const u16 = (o: number): number => view.getUint16(o, little);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return undefined;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return undefined;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : undefined;
    }
  }
  return undefined;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undo the filters of one (sub)image of `rows` scanlines of `rowBytes` bytes starting at `offset`; returns the end. */
function unfilter(data: Uint8Array, offset: number, rows: number, rowBytes: number, bpp: number, out: Uint8Array, name: string): number {
  let prev: Uint8Array = new Uint8Array(rowBytes);
  let o = offset;
  for (let y = 0; y < rows; y++) {
    if (o + 1 + rowBytes > data.length) throw new ImageError(`${name}: PNG image data is truncated (scanline ${y} of ${rows})`);
    const filter = data[o]!;
    const line = out.subarray(y * rowBytes, (y + 1) * rowBytes);
    line.set(data.subarray(o + 1, o + 1 + rowBytes));
    switch (filter) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < rowBytes; i++) line[i] = (line[i]! + line[i - bpp]!) & 0xff;
        break;
      case 2:
        for (let i = 0; i < rowBytes; i++) line[i] = (line[i]! + prev[i]!) & 0xff;
        break;
      case 3:
        for (let i = 0; i < rowBytes; i++) line[i] = (line[i]! + (((i >= bpp ? line[i - bpp]! : 0) + prev[i]!) >> 1)) & 0xff;
        break;
      case 4:
        for (let i = 0; i < rowBytes; i++) line[i] = (line[i]! + paeth(i >= bpp ? line[i - bpp]! : 0, prev[i]!, i >= bpp ? prev[i - bpp]! : 0)) & 0xff;
        break;
      default:
        throw new ImageError(`${name}: PNG scanline ${y} has an unknown filter type ${filter}`);
    }
    prev = line;
    o += 1 + rowBytes;
  }
  return o;
}

/** Unpack `w` pixels of unfiltered scanline bytes into samples at positions given by `put`. */
function unpackRow(line: Uint8Array, w: number, channels: number, depth: number, put: (x: number, c: number, v: number) => void): void {
  if (depth === 8) {
    for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) put(x, c, line[x * channels + c]!);
  } else if (depth === 16) {
    for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) put(x, c, (line[(x * channels + c) * 2]! << 8) | line[(x * channels + c) * 2 + 1]!);
  } else {
    // Sub-byte depths only occur with one channel (gray, palette).
    const perByte = 8 / depth;
    const mask = (1 << depth) - 1;
    for (let x = 0; x < w; x++) {
      const byte = line[Math.floor(x / perByte)]!;
      const shift = 8 - depth * ((x % perByte) + 1);
      put(x, 0, (byte >> shift) & mask);
    }
  }
}

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Decode a PNG file's bytes; `name` (the file) is in every error message. */
export function decodePng(bytes: Uint8Array, name: string): PngImage {
  if (!isPng(bytes)) throw new ImageError(`${name}: not a PNG file (bad signature)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let header: { width: number; height: number; bitDepth: number; colorType: PngColorType; interlace: number } | undefined;
  let palette: Uint8Array | undefined;
  let transparency: Uint8Array | undefined;
  let orientation: number | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (!ended) {
    if (pos + 8 > bytes.length) throw new ImageError(`${name}: PNG file is truncated (no IEND chunk)`);
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (pos + 12 + length > bytes.length) throw new ImageError(`${name}: PNG file is truncated (chunk ${type} of ${length} bytes at offset ${pos})`);
    const body = bytes.subarray(pos + 8, pos + 8 + length);
    const crc = view.getUint32(pos + 8 + length);
    if (crc32(bytes, pos + 4, pos + 8 + length) !== crc) throw new ImageError(`${name}: PNG chunk ${type} at offset ${pos} has a bad CRC (corrupt file)`);
    if (header === undefined && type !== 'IHDR') throw new ImageError(`${name}: PNG file does not start with an IHDR chunk`);
    switch (type) {
      case 'IHDR': {
        if (length !== 13) throw new ImageError(`${name}: PNG IHDR chunk has ${length} bytes, expected 13`);
        const hv = new DataView(body.buffer, body.byteOffset, 13);
        const colorType = body[9]! as PngColorType;
        const bitDepth = body[8]!;
        header = { width: hv.getUint32(0), height: hv.getUint32(4), bitDepth, colorType, interlace: body[12]! };
        if (header.width === 0 || header.height === 0) throw new ImageError(`${name}: PNG image has a zero size (${header.width}x${header.height})`);
        if (!(colorType in CHANNELS)) throw new ImageError(`${name}: PNG colour type ${colorType} is not defined`);
        if (!DEPTHS[colorType].includes(bitDepth)) throw new ImageError(`${name}: PNG bit depth ${bitDepth} is not allowed for colour type ${colorType}`);
        if (body[10] !== 0 || body[11] !== 0 || header.interlace > 1) {
          throw new ImageError(`${name}: PNG uses an unknown compression, filter or interlace method (${body[10]}, ${body[11]}, ${header.interlace})`);
        }
        if (header.width * header.height > 0x7fffffff / 8) throw new ImageError(`${name}: PNG image is too large (${header.width}x${header.height})`);
        break;
      }
      case 'PLTE':
        if (length % 3 !== 0 || length === 0 || length > 768)
          throw new ImageError(`${name}: PNG palette has ${length} bytes (expected 3 to 768, a multiple of 3)`);
        palette = Uint8Array.from(body);
        break;
      case 'tRNS':
        transparency = Uint8Array.from(body);
        break;
      case 'eXIf':
        orientation = exifOrientation(body);
        break;
      case 'IDAT':
        idat.push(body);
        break;
      case 'IEND':
        ended = true;
        break;
      default:
        if ((bytes[pos + 4]! & 0x20) === 0) throw new ImageError(`${name}: PNG has an unknown critical chunk ${type}`);
    }
    pos += 12 + length;
  }
  const h = header!;
  if (h.colorType === 3 && palette === undefined) throw new ImageError(`${name}: PNG palette image has no PLTE chunk`);
  if (idat.length === 0) throw new ImageError(`${name}: PNG has no image data (IDAT)`);
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (cause) {
    throw new ImageError(`${name}: PNG image data cannot be decompressed (${(cause as Error).message})`, { cause });
  }
  const channels = CHANNELS[h.colorType];
  const depth = h.bitDepth;
  const bpp = Math.max(1, (channels * depth) >> 3);
  const samples = depth === 16 ? new Uint16Array(h.width * h.height * channels) : new Uint8Array(h.width * h.height * channels);
  const passes = h.interlace === 1 ? ADAM7 : ([[0, 0, 1, 1]] as const);
  let offset = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((h.width - x0) / dx);
    const rows = Math.ceil((h.height - y0) / dy);
    if (w <= 0 || rows <= 0) continue;
    const rowBytes = Math.ceil((w * channels * depth) / 8);
    const out = new Uint8Array(rowBytes * rows);
    offset = unfilter(raw, offset, rows, rowBytes, bpp, out, name);
    for (let r = 0; r < rows; r++) {
      const base = (y0 + r * dy) * h.width;
      unpackRow(out.subarray(r * rowBytes, (r + 1) * rowBytes), w, channels, depth, (x, c, v) => {
        samples[(base + x0 + x * dx) * channels + c] = v;
      });
    }
  }
  if (h.colorType === 3) {
    const entries = palette!.length / 3;
    for (let i = 0; i < samples.length; i++) {
      if (samples[i]! >= entries) throw new ImageError(`${name}: PNG pixel uses palette index ${samples[i]} but the palette has ${entries} entries`);
    }
  }
  return {
    width: h.width,
    height: h.height,
    bitDepth: depth as PngImage['bitDepth'],
    colorType: h.colorType,
    channels,
    samples,
    palette,
    transparency,
    orientation,
  };
}
