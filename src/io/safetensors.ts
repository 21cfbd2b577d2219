/**
 * safetensors reader and writer (format: https://github.com/huggingface/safetensors#format).
 *
 *   [u64 little-endian N][N bytes of JSON header, space padded][data section]
 *   header = { "__metadata__"?: {string: string}, name: {dtype, shape, data_offsets: [begin, end]} ... }
 *
 * Only the header is read when a file is opened; `read()` fetches one tensor's bytes at its offset, so multi-GB
 * checkpoints are never loaded whole. Every malformed header gives a SafetensorsError naming the file (and tensor).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SafetensorsError } from '../errors.js';
import { allocate, BYTES_PER_ELEMENT, formatDims, numel, type DType, type Tensor } from '../tensor/tensor.js';
import { widenBfloat16, widenFloat16 } from '../tensor/dtype.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F64' | 'U16';

const FROM_SAFETENSORS: Readonly<Record<SafetensorsDtype, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
  F64: 'float64',
  U16: 'uint16',
};
const TO_SAFETENSORS: Readonly<Record<DType, SafetensorsDtype>> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
  float64: 'F64',
  uint16: 'U16',
};

export interface TensorInfo {
  name: string;
  dtype: DType;
  dims: number[];
  /** ABSOLUTE byte offset of the tensor's data in `file`. */
  byteOffset: number;
  byteLength: number;
  /** Absolute path of the file holding the data. */
  file: string;
}

/** Anything tensors can be read from by name: one safetensors file or a sharded checkpoint. */
export interface TensorSource {
  readonly description: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** `widen: true` returns float16/bfloat16 tensors as float32. */
  read(name: string, options?: { widen?: boolean }): Tensor;
  close(): void;
}

/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;
/** fs.readSync reads at most 2 GiB per call; larger tensors are read in chunks. */
const READ_CHUNK = 1 << 30;

function show(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readFully(fd: number, target: Uint8Array, position: number): number {
  let done = 0;
  while (done < target.length) {
    const n = readSync(fd, target, done, Math.min(READ_CHUNK, target.length - done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/** Validate a decoded header; `dataStart` is 8 + header length, `dataLength` the size of the data section. */
function parseHeader(header: unknown, file: string, dataStart: number, dataLength: number): ParsedHeader {
  if (!isRecord(header)) {
    throw new SafetensorsError(`${file}: header must be a JSON object, got ${Array.isArray(header) ? 'an array' : show(header)}`);
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(entry)) throw new SafetensorsError(`${file}: __metadata__ must be an object of strings, got ${show(entry)}`);
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') {
          throw new SafetensorsError(`${file}: __metadata__ value '${key}' must be a string, got ${show(value)}`);
        }
        metadata[key] = value;
      }
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    if (!isRecord(entry)) throw new SafetensorsError(`${where} must be an object with dtype, shape and data_offsets, got ${show(entry)}`);
    const stDtype = entry['dtype'];
    if (typeof stDtype !== 'string' || !Object.hasOwn(FROM_SAFETENSORS, stDtype)) {
      throw new SafetensorsError(`${where} has unknown dtype ${show(stDtype)}`, {
        hint: `supported dtypes: ${Object.keys(FROM_SAFETENSORS).join(', ')}`,
      });
    }
    const dtype = FROM_SAFETENSORS[stDtype as SafetensorsDtype];
    const shape = entry['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new SafetensorsError(`${where} has invalid shape ${show(shape)}; expected an array of non-negative integers`);
    }
    const dims = shape as number[];
    const offsets = entry['data_offsets'];
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw new SafetensorsError(`${where} has invalid data_offsets ${show(offsets)}; expected [begin, end] integers with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = numel(dims) * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        `${where} of dtype ${stDtype} and shape ${formatDims(dims)} needs ${expected} bytes, but data_offsets [${begin}, ${end}] give ${end - begin}`,
      );
    }
    if (end > dataLength) {
      throw new SafetensorsError(`${where} has data_offsets [${begin}, ${end}] beyond the data section of ${dataLength} bytes`, {
        hint: 'the file is probably truncated',
      });
    }
    spans.push({ name, begin, end });
    tensors.set(name, { name, dtype, dims, byteOffset: dataStart + begin, byteLength: end - begin, file });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let reach: (typeof spans)[number] | undefined; // the span seen so far that ends last
  for (const cur of spans) {
    if (cur.end === cur.begin) continue; // empty tensors occupy no bytes
    if (reach !== undefined && cur.begin < reach.end) {
      throw new SafetensorsError(`${file}: tensors '${reach.name}' [${reach.begin}, ${reach.end}] and '${cur.name}' [${cur.begin}, ${cur.end}] overlap`);
    }
    if (reach === undefined || cur.end > reach.end) reach = cur;
  }
  return { metadata, tensors };
}

function tensorFromBytes(info: TensorInfo, bytes: Uint8Array, widen: boolean): Tensor {
  const n = numel(info.dims);
  // Copy into a fresh, aligned typed array (int64 needs 8-byte alignment; little-endian hosts assumed).
  const data = allocate(info.dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  if (widen && info.dtype === 'float16') return { dtype: 'float32', dims: [...info.dims], data: widenFloat16(data as Uint16Array) };
  if (widen && info.dtype === 'bfloat16') return { dtype: 'float32', dims: [...info.dims], data: widenBfloat16(data as Uint16Array) };
  return { dtype: info.dtype, dims: [...info.dims], data };
}

function sortedNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One `.safetensors` file. The file descriptor stays open until `close()`. */
export class SafetensorsFile implements TensorSource {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly description: string;
  private readonly tensors: Map<string, TensorInfo>;
  private fd: number | undefined;

  private constructor(path: string, fd: number, header: ParsedHeader) {
    this.path = path;
    this.fd = fd;
    this.metadata = Object.freeze(header.metadata);
    this.tensors = header.tensors;
    this.description = `safetensors file ${path}`;
  }

  static open(path: string): SafetensorsFile {
    const file = resolve(path);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (cause) {
      throw new SafetensorsError(`${file}: cannot open (${(cause as Error).message})`, { cause });
    }
    try {
      return new SafetensorsFile(file, fd, SafetensorsFile.readHeader(fd, file));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  private static readHeader(fd: number, file: string): ParsedHeader {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(`${file}: not a regular file`);
    const size = stat.size;
    if (size < 8) throw new SafetensorsError(`${file}: file is ${size} bytes, shorter than the 8-byte header length`);
    const lengthBytes = Buffer.alloc(8);
    readFully(fd, lengthBytes, 0);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(size - 8)) {
      throw new SafetensorsError(`${file}: header length ${headerLength} is larger than the ${size - 8} bytes after it`, {
        hint: 'this is not a safetensors file, or it is truncated',
      });
    }
    const n = Number(headerLength);
    if (n > MAX_HEADER_BYTES) throw new SafetensorsError(`${file}: header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    const headerBytes = Buffer.alloc(n);
    readFully(fd, headerBytes, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch (cause) {
      throw new SafetensorsError(`${file}: header is not valid JSON (${(cause as Error).message})`, { cause });
    }
    return parseHeader(header, file, 8 + n, size - 8 - n);
  }

  names(): string[] {
    return sortedNames(this.tensors.keys());
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new SafetensorsError(`${this.path}: no tensor named '${name}'`);
    return { ...info, dims: [...info.dims] };
  }

  read(name: string, options: { widen?: boolean } = {}): Tensor {
    const info = this.info(name);
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: cannot read tensor '${name}', the file was closed`);
    const bytes = new Uint8Array(info.byteLength);
    const got = readFully(this.fd, bytes, info.byteOffset);
    if (got !== info.byteLength) {
      throw new SafetensorsError(`${this.path}: tensor '${name}' is truncated (read ${got} of ${info.byteLength} bytes)`);
    }
    return tensorFromBytes(info, bytes, options.widen === true);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A sharded checkpoint: `*.safetensors.index.json` = {metadata?, weight_map: {tensor name: shard file}}. */
export class ShardedSafetensors implements TensorSource {
  readonly path: string;
  readonly metadata: Record<string, unknown>;
  readonly description: string;
  readonly shards: readonly SafetensorsFile[];
  private readonly owner: Map<string, SafetensorsFile>;

  private constructor(path: string, metadata: Record<string, unknown>, shards: SafetensorsFile[], owner: Map<string, SafetensorsFile>) {
    this.path = path;
    this.metadata = Object.freeze(metadata);
    this.shards = Object.freeze(shards);
    this.owner = owner;
    this.description = `sharded safetensors ${path} (${shards.length} shards)`;
  }

  static open(indexJsonPath: string): ShardedSafetensors {
    const path = resolve(indexJsonPath);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new SafetensorsError(`${path}: cannot read shard index (${(cause as Error).message})`, { cause });
    }
    let index: unknown;
    try {
      index = JSON.parse(text);
    } catch (cause) {
      throw new SafetensorsError(`${path}: shard index is not valid JSON (${(cause as Error).message})`, { cause });
    }
    const weightMap = isRecord(index) ? index['weight_map'] : undefined;
    if (!isRecord(index) || !isRecord(weightMap)) {
      throw new SafetensorsError(`${path}: shard index must be an object with a 'weight_map' object mapping tensor names to shard files`);
    }
    const metadata = isRecord(index['metadata']) ? { ...index['metadata'] } : {};
    const byFile = new Map<string, SafetensorsFile>();
    const owner = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shard] of Object.entries(weightMap)) {
        if (typeof shard !== 'string' || shard === '') {
          throw new SafetensorsError(`${path}: weight_map entry '${name}' must be a shard file name, got ${show(shard)}`);
        }
        const shardPath = resolve(dirname(path), shard);
        let file = byFile.get(shardPath);
        if (file === undefined) {
          if (!existsSync(shardPath)) {
            throw new SafetensorsError(`${path}: shard '${shard}' (holding '${name}') does not exist at ${shardPath}`);
          }
          file = SafetensorsFile.open(shardPath);
          byFile.set(shardPath, file);
        }
        if (!file.has(name)) throw new SafetensorsError(`${path}: tensor '${name}' is mapped to shard '${shard}', which has no such tensor`);
        owner.set(name, file);
      }
    } catch (error) {
      for (const file of byFile.values()) file.close();
      throw error;
    }
    return new ShardedSafetensors(path, metadata, [...byFile.values()], owner);
  }

  names(): string[] {
    return sortedNames(this.owner.keys());
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  private shardOf(name: string): SafetensorsFile {
    const file = this.owner.get(name);
    if (file === undefined) throw new SafetensorsError(`${this.path}: no tensor named '${name}'`);
    return file;
  }

  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }

  read(name: string, options: { widen?: boolean } = {}): Tensor {
    return this.shardOf(name).read(name, options);
  }

  close(): void {
    for (const file of this.shards) file.close();
  }
}

/** Open a `.safetensors` file or a sharded `*.safetensors.index.json` (also `*.safetensors.index.fp16.json`). */
export function openTensorSource(path: string): TensorSource {
  if (path.endsWith('.json')) return ShardedSafetensors.open(path);
  if (path.endsWith('.safetensors')) return SafetensorsFile.open(path);
  throw new SafetensorsError(`${resolve(path)}: expected a .safetensors file or a .safetensors.index.json shard index`);
}

interface Layout {
  header: Buffer;
  parts: { name: string; bytes: Uint8Array }[];
}

/**
 * Header + data parts, laid out as the safetensors writer that produced our goldens does: tensors in sorted name
 * order with contiguous data_offsets, `__metadata__` as the last header entry, compact JSON space-padded to a
 * multiple of 8 bytes. The JSON is assembled by hand so integer-like names keep their sorted place.
 */
function layout(tensors: Record<string, Tensor>, metadata: Record<string, string> | undefined): Layout {
  const entries: string[] = [];
  const parts: Layout['parts'] = [];
  let offset = 0;
  for (const name of sortedNames(Object.keys(tensors))) {
    if (name === '__metadata__') throw new SafetensorsError("writeSafetensors: '__metadata__' cannot be used as a tensor name");
    const t = tensors[name]!;
    const dtype = TO_SAFETENSORS[t.dtype];
    if (dtype === undefined) throw new SafetensorsError(`writeSafetensors: tensor '${name}' has unsupported dtype ${show(t.dtype)}`);
    if (t.data.length !== numel(t.dims)) {
      throw new SafetensorsError(`writeSafetensors: tensor '${name}' of dims ${formatDims(t.dims)} has ${t.data.length} elements`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const info = { dtype, shape: [...t.dims], data_offsets: [offset, offset + bytes.length] };
    entries.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    parts.push({ name, bytes });
    offset += bytes.length;
  }
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new SafetensorsError(`writeSafetensors: metadata value '${key}' must be a string, got ${show(value)}`);
    }
    entries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const json = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return { header: head, parts };
}

/** The bytes of a safetensors file holding `tensors` (sorted by name) and `metadata`. */
export function serializeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  const { header, parts } = layout(tensors, metadata);
  return Buffer.concat([header, ...parts.map((p) => p.bytes)]);
}

/** Write a safetensors file atomically: to `${path}.tmp-<pid>-<rand>`, then rename over `path`. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  const { header, parts } = layout(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    writeAll(fd, header);
    for (const part of parts) writeAll(fd, part.bytes);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (cause) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new SafetensorsError(`${resolve(path)}: cannot write safetensors file (${(cause as Error).message})`, { cause });
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done));
}
