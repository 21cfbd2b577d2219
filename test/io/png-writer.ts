/** A minimal PNG writer for tests: any colour type / bit depth, no interlace, optional PLTE / tRNS / eXIf chunks. */
import { deflateSync } from 'node:zlib';
import { crc32, PNG_SIGNATURE } from '../../src/io/png.js';

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(body).copy(out, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + body.length), 8 + body.length);
  return out;
}

export interface PngSpec {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Samples per pixel in row-major order, at the native depth. */
  samples: readonly number[];
  palette?: readonly number[];
  transparency?: readonly number[];
  /** EXIF orientation written as an eXIf chunk. */
  orientation?: number;
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

export function writePng(spec: PngSpec): Buffer {
  const { width, height, colorType, bitDepth } = spec;
  const cn = CHANNELS[colorType];
  const rowBytes = Math.ceil((width * cn * bitDepth) / 8);
  const raw = Buffer.alloc((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    for (let x = 0; x < width * cn; x++) {
      const v = spec.samples[y * width * cn + x]!;
      if (bitDepth === 16) row.writeUInt16BE(v, x * 2);
      else if (bitDepth === 8) row[x] = v;
      else row[Math.floor((x * bitDepth) / 8)]! |= v << (8 - bitDepth - ((x * bitDepth) % 8));
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr)];
  if (spec.palette !== undefined) parts.push(chunk('PLTE', Uint8Array.from(spec.palette)));
  if (spec.transparency !== undefined) parts.push(chunk('tRNS', Uint8Array.from(spec.transparency)));
  if (spec.orientation !== undefined) {
    // Big-endian TIFF, one IFD with one SHORT entry: Orientation.
    const tiff = Buffer.alloc(8 + 2 + 12 + 4);
    tiff.write('MM', 0, 'latin1');
    tiff.writeUInt16BE(42, 2);
    tiff.writeUInt32BE(8, 4);
    tiff.writeUInt16BE(1, 8);
    tiff.writeUInt16BE(0x0112, 10);
    tiff.writeUInt16BE(3, 12);
    tiff.writeUInt32BE(1, 14);
    tiff.writeUInt16BE(spec.orientation, 18);
    parts.push(chunk('eXIf', tiff));
  }
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}
