/**
 * A read-only zip reader for PyTorch checkpoints (APPNOTE 6.3.x subset): the central directory (ZIP64 included),
 * local headers, stored entries read in place, deflated entries inflated on request (small ones only: torch never
 * compresses, and a compressed tensor storage cannot be pointed into, see torch-checkpoint.ts).
 *
 *   [local header 30 B + name + extra][data] ... [central directory entries 46 B + name + extra + comment]
 *   [ZIP64 end record 56 B][ZIP64 locator 20 B]  (only when a field overflows)  [end record 22 B + comment]
 *
 * Only the end records and the central directory are read when an archive is opened. Every malformed or truncated
 * structure is a TorchCheckpointError naming the file (and the entry).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { TorchCheckpointError } from '../errors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const END_SIZE = 22;
const MAX_COMMENT = 0xffff;
const LOCATOR64_SIZE = 20;
const END64_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
/** fs.readSync reads at most 2 GiB per call. */
const READ_CHUNK = 1 << 30;

export const ZIP_STORED = 0;
export const ZIP_DEFLATED = 8;

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated, anything else is refused when read. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly flags: number;
  readonly localHeaderOffset: number;
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

/** A u64 field as a safe integer (archives beyond 8 PiB are refused). */
function u64(buf: Buffer, at: number, what: string, file: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TorchCheckpointError(`${file}: ${what} ${v} is beyond what can be addressed`);
  return Number(v);
}

export class ZipArchive {
  readonly path: string;
  readonly size: number;
  private readonly entries: Map<string, ZipEntry>;
  private fd: number | undefined;

  private constructor(path: string, fd: number, size: number, entries: Map<string, ZipEntry>) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.entries = entries;
  }

  static open(path: string): ZipArchive {
    const file = resolve(path);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (cause) {
      throw new TorchCheckpointError(`${file}: cannot open (${(cause as Error).message})`, { cause });
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new TorchCheckpointError(`${file}: not a regular file`);
      return new ZipArchive(file, fd, stat.size, readCentralDirectory(fd, file, stat.size));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): ZipEntry | undefined {
    return this.entries.get(name);
  }

  /** Where a stored entry's bytes lie in the archive file (checked against the local header and the file size). */
  dataRange(entry: ZipEntry): { offset: number; length: number } {
    const head = this.bytes(entry.localHeaderOffset, LOCAL_SIZE);
    if (head.length < LOCAL_SIZE || head.readUInt32LE(0) !== SIG_LOCAL) {
      throw new TorchCheckpointError(`${this.path}: entry '${entry.name}' has no local header at offset ${entry.localHeaderOffset}`, {
        hint: 'the file is probably truncated or not a zip archive',
      });
    }
    const offset = entry.localHeaderOffset + LOCAL_SIZE + head.readUInt16LE(26) + head.readUInt16LE(28);
    if (offset + entry.compressedSize > this.size) {
      throw new TorchCheckpointError(
        `${this.path}: entry '${entry.name}' needs bytes [${offset}, ${offset + entry.compressedSize}) but the file has ${this.size}`,
        { hint: 'the file is truncated' },
      );
    }
    return { offset, length: entry.compressedSize };
  }

  /** The whole (uncompressed) content of an entry: stored or deflated. */
  read(entry: ZipEntry): Buffer {
    if ((entry.flags & 1) !== 0) throw new TorchCheckpointError(`${this.path}: entry '${entry.name}' is encrypted`);
    const { offset, length } = this.dataRange(entry);
    const raw = this.bytes(offset, length);
    let data: Buffer;
    if (entry.method === ZIP_STORED) data = raw;
    else if (entry.method === ZIP_DEFLATED) {
      try {
        data = inflateRawSync(raw);
      } catch (cause) {
        throw new TorchCheckpointError(`${this.path}: entry '${entry.name}' cannot be inflated (${(cause as Error).message})`, { cause });
      }
    } else {
      throw new TorchCheckpointError(
        `${this.path}: entry '${entry.name}' uses compression method ${entry.method}; only stored (0) and deflated (8) are supported`,
      );
    }
    if (data.length !== entry.size) {
      throw new TorchCheckpointError(`${this.path}: entry '${entry.name}' has ${data.length} bytes, the central directory says ${entry.size}`);
    }
    return data;
  }

  /** Bytes [position, position + length) of the archive file (shorter at the end of the file). */
  bytes(position: number, length: number): Buffer {
    if (this.fd === undefined) throw new TorchCheckpointError(`${this.path}: the archive was closed`);
    const buf = Buffer.alloc(Math.max(0, Math.min(length, this.size - position)));
    const got = readFully(this.fd, buf, position);
    return got === buf.length ? buf : buf.subarray(0, got);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

/** The end-of-central-directory record, searched backwards over the largest possible comment. */
function findEnd(fd: number, file: string, size: number): { at: number; record: Buffer } {
  const span = Math.min(size, END_SIZE + MAX_COMMENT);
  const tail = Buffer.alloc(span);
  readFully(fd, tail, size - span);
  for (let i = span - END_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_END && i + END_SIZE + tail.readUInt16LE(i + 20) === span) return { at: size - span + i, record: tail.subarray(i) };
  }
  const head = Buffer.alloc(Math.min(size, 4));
  readFully(fd, head, 0);
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) {
    throw new TorchCheckpointError(`${file}: this is a legacy (pre-1.6, non-zip) torch.save file, which eye4eye does not read`, {
      hint: 're-save it with torch >= 1.6 (`torch.save(torch.load(f, weights_only=True), g)`), or use the Hugging Face safetensors weights',
    });
  }
  if (head.length >= 4 && head.readUInt32LE(0) === SIG_LOCAL) {
    throw new TorchCheckpointError(`${file}: zip archive without an end of central directory record (${size} bytes)`, {
      hint: 'the file is truncated: download it again',
    });
  }
  throw new TorchCheckpointError(`${file}: not a zip archive (no end of central directory record), so not a PyTorch checkpoint`);
}

function directoryOf(fd: number, file: string, size: number): Directory {
  const { at, record } = findEnd(fd, file, size);
  const dir: Directory = { count: record.readUInt16LE(10), size: record.readUInt32LE(12), offset: record.readUInt32LE(16) };
  const disks = [record.readUInt16LE(4), record.readUInt16LE(6)];
  if (disks.some((d) => d !== 0 && d !== 0xffff)) throw new TorchCheckpointError(`${file}: multi-disk zip archives are not supported`);
  const locatorAt = at - LOCATOR64_SIZE;
  const locator = locatorAt >= 0 ? Buffer.alloc(LOCATOR64_SIZE) : undefined;
  if (locator !== undefined) readFully(fd, locator, locatorAt);
  if (locator === undefined || locator.readUInt32LE(0) !== SIG_LOCATOR64) {
    if (dir.count === 0xffff || dir.size === 0xffffffff || dir.offset === 0xffffffff) {
      throw new TorchCheckpointError(`${file}: the end record says ZIP64 but there is no ZIP64 locator before it`, { hint: 'the file is damaged' });
    }
    return dir;
  }
  const end64At = u64(locator, 8, 'ZIP64 end record offset', file);
  const end64 = Buffer.alloc(END64_SIZE);
  if (end64At + END64_SIZE > size || readFully(fd, end64, end64At) !== END64_SIZE || end64.readUInt32LE(0) !== SIG_END64) {
    throw new TorchCheckpointError(`${file}: no ZIP64 end of central directory record at offset ${end64At}`, { hint: 'the file is damaged' });
  }
  return {
    count: u64(end64, 32, 'ZIP64 entry count', file),
    size: u64(end64, 40, 'ZIP64 central directory size', file),
    offset: u64(end64, 48, 'ZIP64 central directory offset', file),
  };
}

/** Fields set to 0xffffffff in a central directory entry come from its ZIP64 extra field (id 1), in this order. */
function applyZip64(extra: Buffer, entry: { size: number; compressedSize: number; localHeaderOffset: number }, file: string, name: string): void {
  const wanted = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((k) => entry[k] === 0xffffffff);
  if (wanted.length === 0) return;
  for (let at = 0; at + 4 <= extra.length;) {
    const id = extra.readUInt16LE(at);
    const len = extra.readUInt16LE(at + 2);
    if (id === 1) {
      if (len < wanted.length * 8 || at + 4 + len > extra.length) break;
      wanted.forEach((k, i) => (entry[k] = u64(extra, at + 4 + i * 8, `ZIP64 field of '${name}'`, file)));
      return;
    }
    at += 4 + len;
  }
  throw new TorchCheckpointError(`${file}: entry '${name}' needs a ZIP64 extra field for ${wanted.join(', ')} and has none`, { hint: 'the file is damaged' });
}

function readCentralDirectory(fd: number, file: string, size: number): Map<string, ZipEntry> {
  const dir = directoryOf(fd, file, size);
  if (dir.offset + dir.size > size) {
    throw new TorchCheckpointError(`${file}: the central directory [${dir.offset}, ${dir.offset + dir.size}) lies beyond the end of the ${size}-byte file`, {
      hint: 'the file is truncated',
    });
  }
  const cd = Buffer.alloc(dir.size);
  readFully(fd, cd, dir.offset);
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < dir.count; i++) {
    if (at + CENTRAL_SIZE > cd.length || cd.readUInt32LE(at) !== SIG_CENTRAL) {
      throw new TorchCheckpointError(`${file}: central directory entry ${i} of ${dir.count} is damaged (at offset ${dir.offset + at})`);
    }
    const nameLen = cd.readUInt16LE(at + 28);
    const extraLen = cd.readUInt16LE(at + 30);
    const commentLen = cd.readUInt16LE(at + 32);
    if (at + CENTRAL_SIZE + nameLen + extraLen + commentLen > cd.length) {
      throw new TorchCheckpointError(`${file}: central directory entry ${i} of ${dir.count} runs past the directory's end`);
    }
    const name = cd.toString('utf8', at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLen);
    const fields = { size: cd.readUInt32LE(at + 24), compressedSize: cd.readUInt32LE(at + 20), localHeaderOffset: cd.readUInt32LE(at + 42) };
    applyZip64(cd.subarray(at + CENTRAL_SIZE + nameLen, at + CENTRAL_SIZE + nameLen + extraLen), fields, file, name);
    if (entries.has(name)) throw new TorchCheckpointError(`${file}: entry '${name}' appears twice in the central directory`);
    entries.set(name, { name, method: cd.readUInt16LE(at + 10), flags: cd.readUInt16LE(at + 8), crc32: cd.readUInt32LE(at + 16), ...fields });
    at += CENTRAL_SIZE + nameLen + extraLen + commentLen;
  }
  return entries;
}
