/**
 * A weights-only reader of PyTorch's zip checkpoints (`torch.save` since 1.6, e.g. the official sam_hq_vit_l.pth):
 *
 *   <root>/data.pkl          pickle of the state_dict: {name: _rebuild_tensor_v2(storage, offset, size, stride, ...)}
 *   <root>/data/<key>        one storage per key, raw little-endian elements, stored (not compressed)
 *   <root>/version, <root>/byteorder (torch >= 2.1; absent means little-endian)
 *
 * data.pkl runs in our own restricted pickle VM (pickle.ts): only the globals that rebuild tensors are allowed
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter(_with_state), the torch.*Storage
 * dtype markers); any other global is refused by name before anything is built, so pickled code never runs.
 *
 * A tensor is (file, byteOffset, byteLength) INSIDE the .pth: storages are stored uncompressed, so ONNX external data
 * points straight into the checkpoint, as with safetensors. Contiguous tensors at any offset of their storage are
 * supported; non-contiguous ones are refused (pointing into the file needs contiguous bytes; state_dicts of
 * nn.Modules never hold any).
 */
import { createHash } from 'node:crypto';
import { TorchCheckpointError } from '../errors.js';
import { widenBfloat16, widenFloat16 } from '../tensor/dtype.js';
import { allocate, BYTES_PER_ELEMENT, formatDims, numel, type DType, type Tensor } from '../tensor/tensor.js';
import { PyDict, PyGlobal, PyTuple, unpickle, type PyValue } from './pickle.js';
import type { TensorInfo, TensorSource } from './safetensors.js';
import { ZIP_STORED, ZipArchive, type ZipEntry } from './zip.js';

/** torch.<X>Storage -> dtype. torch.UntypedStorage holds bytes. */
const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

/** The callables data.pkl may REDUCE; everything else allowed is an inert marker. */
const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);

function allowGlobal(module: string, name: string): boolean {
  if (CALLABLES.has(`${module}.${name}`)) return true;
  // Storage types only name a dtype (never called); unsupported dtypes are reported per tensor below.
  return (module === 'torch' && /^[A-Za-z0-9]+Storage$/.test(name)) || (module === 'torch.storage' && name === 'UntypedStorage');
}

interface StorageRef {
  readonly key: string;
  readonly typeName: string;
  readonly dtype: DType | undefined;
  readonly numel: number;
}

interface TensorRecord {
  readonly storage: StorageRef;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

type Host<T> = { readonly host: T };

const isStorage = (v: PyValue): v is Host<StorageRef> =>
  typeof v === 'object' && v !== null && 'host' in v && (v.host as { typeName?: unknown }).typeName !== undefined;
const isTensor = (v: PyValue): v is Host<TensorRecord> =>
  typeof v === 'object' && v !== null && 'host' in v && (v.host as { stride?: unknown }).stride !== undefined;
const isCount = (v: PyValue | undefined): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function intTuple(v: PyValue | undefined): number[] | undefined {
  return v instanceof PyTuple && v.items.every(isCount) ? (v.items as number[]) : undefined;
}

/** Row-major strides; dimensions of size 1 may carry any stride (torch's own contiguity rule). */
function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i]!;
  }
  return true;
}

interface Parsed {
  readonly root: string;
  readonly records: Map<string, TensorRecord>;
  readonly pickle: Buffer;
}

function findRoot(zip: ZipArchive): string {
  const roots = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (roots.length !== 1) {
    throw new TorchCheckpointError(
      `${zip.path}: ${roots.length === 0 ? 'no <root>/data.pkl entry' : `several data.pkl entries (${roots.join(', ')})`}, so this zip is not a PyTorch checkpoint`,
    );
  }
  return roots[0]!.slice(0, -'/data.pkl'.length);
}

function parse(zip: ZipArchive): Parsed {
  const root = findRoot(zip);
  const byteorder = zip.entry(`${root}/byteorder`);
  if (byteorder !== undefined) {
    const order = zip.read(byteorder).toString('utf8').trim();
    if (order !== 'little') throw new TorchCheckpointError(`${zip.path}: ${root}/byteorder is '${order}'; only little-endian checkpoints are supported`);
  }
  const pickle = zip.read(zip.entry(`${root}/data.pkl`)!);
  const where = `${zip.path}: data.pkl`;
  const bad = (what: string): TorchCheckpointError => new TorchCheckpointError(`${where}: ${what}`);
  const result = unpickle(pickle, {
    file: zip.path,
    entry: 'data.pkl',
    allowGlobal,
    persistentLoad(pid) {
      const [tag, type, key, , count] = pid instanceof PyTuple ? pid.items : [];
      if (tag !== 'storage' || !(type instanceof PyGlobal) || typeof key !== 'string' || !isCount(count)) {
        throw bad(`persistent id is not a ('storage', type, key, location, numel) tuple`);
      }
      const dtype = type.module.startsWith('torch') ? STORAGE_DTYPES[type.name] : undefined;
      return { host: { key, typeName: type.qualified, dtype, numel: count } satisfies StorageRef };
    },
    call(fn, args) {
      const a = args.items;
      switch (fn.qualified) {
        case 'collections.OrderedDict':
          return a.length === 0 ? new PyDict() : undefined;
        case 'torch._utils._rebuild_tensor_v2': {
          const [storage, offset] = a;
          const size = intTuple(a[2]);
          const stride = intTuple(a[3]);
          if (a.length < 6 || !isStorage(storage!) || !isCount(offset) || size === undefined || stride === undefined || size.length !== stride.length) {
            throw bad('_rebuild_tensor_v2 needs (storage, offset, size, stride, requires_grad, backward_hooks)');
          }
          const hooks = a[5];
          if (!(hooks instanceof PyDict) || hooks.map.size > 0) throw bad('a tensor has backward hooks; a weights-only checkpoint has none');
          return { host: { storage: storage.host, offset, size, stride } satisfies TensorRecord };
        }
        case 'torch._utils._rebuild_parameter':
        case 'torch._utils._rebuild_parameter_with_state':
          if (!isTensor(a[0] ?? null)) throw bad(`${fn.name} needs a tensor as its first argument`);
          return a[0];
        default:
          return undefined;
      }
    },
  });
  if (!(result instanceof PyDict)) throw bad('the pickled object is not a dict, so not a state_dict');
  const records = new Map<string, TensorRecord>();
  for (const [name, value] of result.map) {
    if (typeof name !== 'string') throw bad(`state_dict key ${String(name)} is not a string`);
    if (!isTensor(value)) {
      throw new TorchCheckpointError(`${where}: state_dict entry '${name}' is not a tensor`, {
        hint: 'expected a flat state_dict of tensors, as torch.save(model.state_dict()) writes',
      });
    }
    records.set(name, value.host);
  }
  return { root, records, pickle };
}

function locate(zip: ZipArchive, root: string, name: string, record: TensorRecord): TensorInfo {
  const where = `${zip.path}: tensor '${name}'`;
  const { storage } = record;
  if (storage.dtype === undefined) {
    throw new TorchCheckpointError(`${where} has storage type '${storage.typeName}', whose dtype is not supported`, {
      hint: `supported: ${Object.keys(STORAGE_DTYPES)
        .map((n) => `torch.${n}`)
        .join(', ')}`,
    });
  }
  const entryName = `${root}/data/${storage.key}`;
  const entry: ZipEntry | undefined = zip.entry(entryName);
  if (entry === undefined) {
    throw new TorchCheckpointError(`${where}: its storage entry '${entryName}' is missing from the archive`, { hint: 'the file is damaged or truncated' });
  }
  if (entry.method !== ZIP_STORED) {
    throw new TorchCheckpointError(
      `${where}: storage entry '${entryName}' is compressed (method ${entry.method}); tensors are read in place and must be stored`,
      {
        hint: 'torch.save writes storages uncompressed: use the file as torch.save wrote it, not a re-zipped copy',
      },
    );
  }
  const elem = BYTES_PER_ELEMENT[storage.dtype];
  if (entry.size < storage.numel * elem) {
    throw new TorchCheckpointError(
      `${where}: storage entry '${entryName}' has ${entry.size} bytes, shorter than the ${storage.numel} ${storage.dtype} elements (${storage.numel * elem} bytes) it declares`,
    );
  }
  if (!isContiguous(record.size, record.stride)) {
    throw new TorchCheckpointError(`${where} is not contiguous (size ${formatDims(record.size)}, stride ${formatDims(record.stride)})`, {
      hint: 'weights are read in place from the checkpoint, which needs contiguous tensors: re-save with every tensor .contiguous()',
    });
  }
  const count = numel(record.size);
  if (record.offset + count > storage.numel) {
    throw new TorchCheckpointError(
      `${where} needs elements [${record.offset}, ${record.offset + count}) of storage '${storage.key}', which has ${storage.numel}`,
    );
  }
  const range = zip.dataRange(entry);
  return { name, dtype: storage.dtype, dims: [...record.size], byteOffset: range.offset + record.offset * elem, byteLength: count * elem, file: zip.path };
}

/** One PyTorch zip checkpoint; tensors under their names in the state_dict. The file stays open until `close()`. */
export class TorchCheckpoint implements TensorSource {
  readonly path: string;
  readonly description: string;
  /** sha256 of data.pkl and every entry's name, size and CRC-32: a content key that reads no tensor data. */
  readonly contentKey: string;
  private readonly tensors: Map<string, TensorInfo>;

  private constructor(
    private readonly zip: ZipArchive,
    tensors: Map<string, TensorInfo>,
    contentKey: string,
  ) {
    this.path = zip.path;
    this.description = `PyTorch checkpoint ${zip.path}`;
    this.tensors = tensors;
    this.contentKey = contentKey;
  }

  static open(path: string): TorchCheckpoint {
    const zip = ZipArchive.open(path);
    try {
      const { root, records, pickle } = parse(zip);
      const tensors = new Map<string, TensorInfo>();
      for (const [name, record] of records) tensors.set(name, locate(zip, root, name, record));
      const hash = createHash('sha256').update(pickle);
      for (const name of zip.names().sort()) {
        const e = zip.entry(name)!;
        hash.update(`\n${name}\t${e.size}\t${e.crc32}`);
      }
      return new TorchCheckpoint(zip, tensors, hash.digest('hex'));
    } catch (error) {
      zip.close();
      throw error;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new TorchCheckpointError(`${this.path}: no tensor named '${name}'`);
    return { ...info, dims: [...info.dims] };
  }

  read(name: string, options: { widen?: boolean } = {}): Tensor {
    const info = this.info(name);
    const bytes = this.zip.bytes(info.byteOffset, info.byteLength);
    if (bytes.length !== info.byteLength) {
      throw new TorchCheckpointError(`${this.path}: tensor '${name}' is truncated (read ${bytes.length} of ${info.byteLength} bytes)`);
    }
    const data = allocate(info.dtype, numel(info.dims));
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
    if (options.widen === true && info.dtype === 'float16') return { dtype: 'float32', dims: info.dims, data: widenFloat16(data as Uint16Array) };
    if (options.widen === true && info.dtype === 'bfloat16') return { dtype: 'float32', dims: info.dims, data: widenBfloat16(data as Uint16Array) };
    return { dtype: info.dtype, dims: info.dims, data };
  }

  close(): void {
    this.zip.close();
  }
}
