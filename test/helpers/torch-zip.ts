/**
 * Hand-made PyTorch zip checkpoints for tests: a tiny pickle assembler (the opcodes torch.save emits, and the
 * ones an attacker would use) and a zip writer (stored or deflated entries, optional ZIP64 records), so malformed
 * and malicious variants can be built byte by byte.
 */
import { deflateRawSync } from 'node:zlib';

export const op = {
  proto: (v: number): Buffer => Buffer.from([0x80, v]),
  global: (module: string, name: string): Buffer => Buffer.from(`c${module}\n${name}\n`, 'utf8'),
  stackGlobal: (): Buffer => Buffer.from([0x93]),
  str: (s: string): Buffer => {
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58; // BINUNICODE
    head.writeUInt32LE(b.length, 1);
    return Buffer.concat([head, b]);
  },
  shortStr: (s: string): Buffer => Buffer.concat([Buffer.from([0x8c, Buffer.byteLength(s)]), Buffer.from(s, 'utf8')]),
  int: (n: number): Buffer => {
    if (n >= 0 && n < 256) return Buffer.from([0x4b, n]);
    if (n >= 0 && n < 65536) return Buffer.from([0x4d, n & 0xff, n >> 8]);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  },
  mark: Buffer.from([0x28]),
  tuple: Buffer.from([0x74]),
  emptyTuple: Buffer.from([0x29]),
  emptyDict: Buffer.from([0x7d]),
  emptyList: Buffer.from([0x5d]),
  setItems: Buffer.from([0x75]),
  reduce: Buffer.from([0x52]),
  build: Buffer.from([0x62]),
  persid: Buffer.from([0x51]),
  newFalse: Buffer.from([0x89]),
  newObj: Buffer.from([0x81]),
  memoize: Buffer.from([0x94]),
  frame: (n: number): Buffer => {
    const b = Buffer.alloc(9);
    b[0] = 0x95;
    b.writeBigUInt64LE(BigInt(n), 1);
    return b;
  },
  stop: Buffer.from([0x2e]),
};

export interface PickledTensor {
  name: string;
  /** Storage class name under `torch.` (FloatStorage, HalfStorage, ...). */
  storage: string;
  key: string;
  /** Elements of the whole storage. */
  numel: number;
  offset?: number;
  size: number[];
  stride?: number[];
  /** Wrap in torch._utils._rebuild_parameter. */
  parameter?: boolean;
}

function contiguousStride(size: readonly number[]): number[] {
  const stride = new Array<number>(size.length).fill(1);
  for (let i = size.length - 2; i >= 0; i--) stride[i] = stride[i + 1]! * size[i + 1]!;
  return stride;
}

const tupleOf = (items: Buffer[]): Buffer => Buffer.concat([op.mark, ...items, op.tuple]);

/** One `_rebuild_tensor_v2(...)` call, as torch.save writes it (protocol 2, no memo). */
export function tensorOps(t: PickledTensor): Buffer {
  const pid = tupleOf([op.str('storage'), op.global('torch', t.storage), op.str(t.key), op.str('cpu'), op.int(t.numel)]);
  const rebuild = Buffer.concat([
    op.global('torch._utils', '_rebuild_tensor_v2'),
    tupleOf([
      pid,
      op.persid,
      op.int(t.offset ?? 0),
      tupleOf(t.size.map(op.int)),
      tupleOf((t.stride ?? contiguousStride(t.size)).map(op.int)),
      op.newFalse,
      op.global('collections', 'OrderedDict'),
      op.emptyTuple,
      op.reduce,
    ]),
    op.reduce,
  ]);
  if (t.parameter !== true) return rebuild;
  return Buffer.concat([
    op.global('torch._utils', '_rebuild_parameter'),
    tupleOf([rebuild, op.newFalse, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce]),
    op.reduce,
  ]);
}

/** An OrderedDict state_dict of tensors; `extra` goes right before SETITEMS' end (more key/value ops). */
export function stateDictPickle(tensors: readonly PickledTensor[], options: { metadataState?: boolean } = {}): Buffer {
  const items = tensors.flatMap((t) => [op.str(t.name), tensorOps(t)]);
  const parts = [op.proto(2), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.mark, ...items, op.setItems];
  if (options.metadataState === true) {
    // state = {'_metadata': {}} as a state_dict's __dict__ would be
    parts.push(op.emptyDict, op.mark, op.str('_metadata'), op.emptyDict, op.setItems, op.build);
  }
  parts.push(op.stop);
  return Buffer.concat(parts);
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Size written in the central directory instead of the real one. */
  declaredSize?: number;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive; `zip64` writes every size/offset through ZIP64 extra fields and end records. */
export function makeZip(entries: readonly ZipInput[], options: { zip64?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const body = e.deflate === true ? deflateRawSync(e.data) : Buffer.from(e.data);
    const size = e.declaredSize ?? e.data.length;
    const csize = e.declaredSize ?? body.length;
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.deflate === true ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const extra = options.zip64 === true ? Buffer.alloc(28) : Buffer.alloc(0);
    if (options.zip64 === true) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(csize), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(45, 4);
    central.writeUInt16LE(45, 6);
    central.writeUInt16LE(e.deflate === true ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(options.zip64 === true ? 0xffffffff : csize, 20);
    central.writeUInt32LE(options.zip64 === true ? 0xffffffff : size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt32LE(options.zip64 === true ? 0xffffffff : offset, 42);
    centrals.push(central, name, extra);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (options.zip64 === true) {
    const end64 = Buffer.alloc(56);
    end64.writeUInt32LE(0x06064b50, 0);
    end64.writeBigUInt64LE(44n, 4);
    end64.writeBigUInt64LE(BigInt(entries.length), 24);
    end64.writeBigUInt64LE(BigInt(entries.length), 32);
    end64.writeBigUInt64LE(BigInt(cd.length), 40);
    end64.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(end64, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(options.zip64 === true ? 0xffff : entries.length, 8);
  end.writeUInt16LE(options.zip64 === true ? 0xffff : entries.length, 10);
  end.writeUInt32LE(options.zip64 === true ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(options.zip64 === true ? 0xffffffff : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, end]);
}

/** A checkpoint archive `root/` with data.pkl, version and the given storages (raw bytes by key). */
export function checkpointZip(
  pickle: Uint8Array,
  storages: Readonly<Record<string, Uint8Array>>,
  options: { root?: string; byteorder?: string; zip64?: boolean; deflateStorages?: boolean } = {},
): Buffer {
  const root = options.root ?? 'archive';
  const entries: ZipInput[] = [{ name: `${root}/data.pkl`, data: pickle }];
  if (options.byteorder !== undefined) entries.push({ name: `${root}/byteorder`, data: Buffer.from(options.byteorder) });
  for (const [key, data] of Object.entries(storages)) entries.push({ name: `${root}/data/${key}`, data, deflate: options.deflateStorages === true });
  entries.push({ name: `${root}/version`, data: Buffer.from('3\n') });
  return makeZip(entries, options.zip64 === true ? { zip64: true } : {});
}
