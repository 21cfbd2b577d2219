/**
 * A tiny, test-only reader for the golden `io.safetensors` files, kept local so the math tests do not depend on
 * the library's safetensors reader (written separately). Layout: 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}}` (offsets relative to the data start), then data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sd1TinyDir } from './paths.js';

export interface GoldenTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const cache = new Map<string, { header: Record<string, HeaderEntry>; data: Buffer }>();

function load(file: string): { header: Record<string, HeaderEntry>; data: Buffer } {
  const hit = cache.get(file);
  if (hit !== undefined) return hit;
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, HeaderEntry>;
  const entry = { header, data: bytes.subarray(8 + headerLength) };
  cache.set(file, entry);
  return entry;
}

/** Read tensor `name` of a golden safetensors file (default: sd1-tiny/io.safetensors) as a copied typed array. */
export function readGoldenTensor(name: string, file: string = join(sd1TinyDir, 'io.safetensors')): GoldenTensor {
  const { header, data } = load(file);
  const entry = header[name];
  if (entry === undefined) throw new Error(`${file}: no tensor named ${name}`);
  const [begin, end] = entry.data_offsets;
  const raw = data.subarray(begin, end);
  const copy = new ArrayBuffer(raw.length);
  new Uint8Array(copy).set(raw);
  switch (entry.dtype) {
    case 'F32':
      return { dims: entry.shape, data: new Float32Array(copy) };
    case 'I64':
      return { dims: entry.shape, data: new BigInt64Array(copy) };
    case 'I32':
      return { dims: entry.shape, data: new Int32Array(copy) };
    case 'U8':
      return { dims: entry.shape, data: new Uint8Array(copy) };
    default:
      throw new Error(`${file}: ${name}: unsupported dtype ${entry.dtype}`);
  }
}

/** Read a float32 golden tensor, failing if it has another dtype. */
export function readGoldenF32(name: string, file?: string): { dims: readonly number[]; data: Float32Array } {
  const t = readGoldenTensor(name, file);
  if (!(t.data instanceof Float32Array)) throw new Error(`${name}: expected F32`);
  return { dims: t.dims, data: t.data };
}

/** Read an integer golden tensor (I64/I32/U8) as plain numbers. */
export function readGoldenInts(name: string, file?: string): number[] {
  const t = readGoldenTensor(name, file);
  if (t.data instanceof Float32Array) throw new Error(`${name}: expected an integer dtype`);
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** The io.json document of a golden case. */
export function readGoldenIoJson(dir: string = sd1TinyDir): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8')) as Record<string, unknown>;
}

/** The sub-tensor of a float32 golden tensor at leading indices, e.g. `goldenSlice('transfer.latents', k, b)`. */
export function goldenSlice(name: string, ...indices: number[]): { dims: readonly number[]; data: Float32Array } {
  const { dims, data } = readGoldenF32(name);
  let offset = 0;
  let size = data.length;
  indices.forEach((index, axis) => {
    const extent = dims[axis];
    if (extent === undefined || index < 0 || index >= extent) throw new Error(`${name}: index ${index} out of range on axis ${axis}`);
    size /= extent;
    offset += index * size;
  });
  return { dims: dims.slice(indices.length), data: data.subarray(offset, offset + size) };
}
