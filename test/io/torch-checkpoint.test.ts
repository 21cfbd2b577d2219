import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorchCheckpoint } from '../../src/io/torch-checkpoint.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { TorchCheckpointError } from '../../src/errors.js';
import { officialToHfNames } from '../../src/models/sam/official-names.js';
import { fixturesDir } from '../helpers/paths.js';
import { checkpointZip, makeZip, op, stateDictPickle, tensorOps, type PickledTensor } from '../helpers/torch-zip.js';

const modelDir = join(fixturesDir, 'golden', 'samhq-tiny', 'model');
const pth = join(modelDir, 'sam_hq_tiny.pth');
const tmp = mkdtempSync(join(tmpdir(), 'e4e-torch-checkpoint-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

function write(bytes: Uint8Array, name = `${counter++}.pth`): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

function throwsCheckpoint(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TorchCheckpointError, `expected TorchCheckpointError, got ${String(error)}`);
    assert.equal(error.code, 'E_CHECKPOINT');
    const first = error.message.split('\n')[0]!;
    if (typeof message === 'string') assert.equal(first, message);
    else assert.match(first, message);
    return true;
  });
}

const f32 = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
const w: PickledTensor = { name: 'w', storage: 'FloatStorage', key: '0', numel: 6, size: [2, 3] };

test('golden .pth: every tensor equals model.safetensors byte for byte, and points into the .pth', () => {
  const ckpt = TorchCheckpoint.open(pth);
  const st = SafetensorsFile.open(join(modelDir, 'model.safetensors'));
  const whole = readFileSync(pth);
  try {
    const toHf = officialToHfNames(ckpt.names(), pth);
    assert.equal(ckpt.names().length, 227);
    assert.deepEqual([...toHf.values()].sort(), st.names());
    for (const [official, hf] of toHf) {
      const info = ckpt.info(official);
      const ref = st.info(hf);
      assert.equal(info.file, pth);
      assert.equal(info.dtype, ref.dtype, official);
      assert.deepEqual(info.dims, ref.dims, official);
      const inPth = whole.subarray(info.byteOffset, info.byteOffset + info.byteLength);
      const a = ckpt.read(official);
      const b = st.read(hf);
      assert.ok(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(inPth), `${official} bytes in the file`);
      assert.ok(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(inPth), `${official} read()`);
    }
    assert.match(ckpt.contentKey, /^[0-9a-f]{64}$/);
  } finally {
    ckpt.close();
    st.close();
  }
});

test('hand-made checkpoint: dtypes, storage offsets, shared storage, parameters, metadata state, byteorder', () => {
  const half = new Uint16Array([0x3c00, 0xc000, 0x3800]); // 1, -2, 0.5
  const longs = new BigInt64Array([5n, -7n]);
  const pickle = stateDictPickle(
    [
      w,
      { name: 'w_tail', storage: 'FloatStorage', key: '0', numel: 6, offset: 3, size: [3] },
      { name: 'h', storage: 'HalfStorage', key: '1', numel: 3, size: [3], parameter: true },
      { name: 'n', storage: 'LongStorage', key: '2', numel: 2, size: [2, 1], stride: [1, 7] },
      { name: 's', storage: 'FloatStorage', key: '0', numel: 6, offset: 5, size: [] },
    ],
    { metadataState: true },
  );
  const path = write(
    checkpointZip(pickle, { '0': f32([1, 2, 3, 4, 5, 6]), '1': new Uint8Array(half.buffer), '2': new Uint8Array(longs.buffer) }, { byteorder: 'little' }),
  );
  const ckpt = TorchCheckpoint.open(path);
  try {
    assert.deepEqual(ckpt.names(), ['h', 'n', 's', 'w', 'w_tail']);
    assert.deepEqual([...ckpt.read('w').data], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(ckpt.read('w').dims, [2, 3]);
    assert.deepEqual([...ckpt.read('w_tail').data], [4, 5, 6]);
    assert.equal(ckpt.info('w_tail').byteOffset, ckpt.info('w').byteOffset + 12);
    assert.deepEqual([...ckpt.read('s').data], [6]);
    assert.deepEqual(ckpt.read('s').dims, []);
    assert.equal(ckpt.read('h').dtype, 'float16');
    assert.deepEqual([...ckpt.read('h', { widen: true }).data], [1, -2, 0.5]);
    assert.deepEqual([...ckpt.read('n').data], [5n, -7n]);
  } finally {
    ckpt.close();
  }
});

test('protocol 4 opcodes (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) and ZIP64 records', () => {
  const pickle = Buffer.concat([
    op.proto(4),
    op.frame(0),
    op.shortStr('collections'),
    op.memoize,
    op.shortStr('OrderedDict'),
    op.memoize,
    op.stackGlobal(),
    op.memoize,
    op.emptyTuple,
    op.reduce,
    op.mark,
    op.shortStr('w'),
    tensorOps(w),
    op.setItems,
    op.stop,
  ]);
  const path = write(checkpointZip(pickle, { '0': f32([1, 2, 3, 4, 5, 6]) }, { zip64: true }));
  const ckpt = TorchCheckpoint.open(path);
  assert.deepEqual([...ckpt.read('w').data], [1, 2, 3, 4, 5, 6]);
  ckpt.close();
});

test('a deflated data.pkl is inflated, a deflated storage is refused', () => {
  const entries = [
    { name: 'a/data.pkl', data: stateDictPickle([w]), deflate: true },
    { name: 'a/data/0', data: f32([1, 2, 3, 4, 5, 6]) },
  ];
  const ok = TorchCheckpoint.open(write(makeZip(entries)));
  assert.deepEqual([...ok.read('w').data], [1, 2, 3, 4, 5, 6]);
  ok.close();
  const path = write(checkpointZip(stateDictPickle([w]), { '0': f32([1, 2, 3, 4, 5, 6]) }, { deflateStorages: true }));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: tensor 'w': storage entry 'archive/data/0' is compressed (method 8); tensors are read in place and must be stored`,
  );
});

test('malicious pickles: any other global is refused by name, before anything runs', () => {
  const system = Buffer.concat([op.proto(2), op.global('os', 'system'), op.mark, op.str('echo pwned'), op.tuple, op.reduce, op.stop]);
  let path = write(checkpointZip(system, {}), 'sam_hq_vit_l.pth');
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl references global 'os.system' (only tensor-rebuilding globals are allowed)`,
  );
  const evil = Buffer.concat([op.proto(4), op.shortStr('builtins'), op.shortStr('eval'), op.stackGlobal(), op.stop]);
  path = write(checkpointZip(evil, {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl references global 'builtins.eval' (only tensor-rebuilding globals are allowed)`,
  );
  // A torch global that is not a tensor rebuilder, placed inside an otherwise valid state_dict.
  const load = Buffer.concat([
    op.proto(2),
    op.global('collections', 'OrderedDict'),
    op.emptyTuple,
    op.reduce,
    op.mark,
    op.str('x'),
    op.global('torch', 'load'),
    op.setItems,
    op.stop,
  ]);
  path = write(checkpointZip(load, {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl references global 'torch.load' (only tensor-rebuilding globals are allowed)`,
  );
});

test('malicious pickles: REDUCE of an allowed non-callable, NEWOBJ, BUILD on a tensor', () => {
  const reduceStorage = Buffer.concat([op.proto(2), op.global('torch', 'FloatStorage'), op.emptyTuple, op.reduce, op.stop]);
  let path = write(checkpointZip(reduceStorage, {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl calls 'torch.FloatStorage' (REDUCE at byte 23), which is not a tensor-rebuilding function`,
  );
  const reduceString = Buffer.concat([op.proto(2), op.str('os.system'), op.emptyTuple, op.reduce, op.stop]);
  path = write(checkpointZip(reduceString, {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl calls string "os.system" (REDUCE at byte 17), which is not a tensor-rebuilding function`,
  );
  const newObj = Buffer.concat([op.proto(2), op.global('collections', 'OrderedDict'), op.emptyTuple, op.newObj, op.stop]);
  path = write(checkpointZip(newObj, {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: refusing to load: data.pkl uses opcode NEWOBJ (0x81) at byte 28, which builds arbitrary objects`,
  );
  const buildTensor = Buffer.concat([op.proto(2), tensorOps(w), op.emptyDict, op.build, op.stop]);
  path = write(checkpointZip(buildTensor, { '0': f32([1, 2, 3, 4, 5, 6]) }));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    new RegExp(
      `^${path.replace(/[.]/g, '\\.')}: refusing to load: data\\.pkl sets the state of an object \\(BUILD at byte \\d+\\); only dicts may get a state$`,
    ),
  );
});

test('bad pickles: truncated, not a state_dict, entries that are not tensors', () => {
  const full = stateDictPickle([w]);
  let path = write(checkpointZip(full.subarray(0, full.length - 1), { '0': f32([1, 2, 3, 4, 5, 6]) }));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: data.pkl is not a valid pickle: it ends at byte ${full.length - 1} without a STOP opcode (opcode at byte ${full.length - 1})`,
  );
  // proto 2, GLOBAL collections.OrderedDict 25, EMPTY_TUPLE, REDUCE, MARK, then BINUNICODE 'w' at byte 30
  path = write(checkpointZip(full.subarray(0, 33), {}));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: data.pkl is not a valid pickle: it ends at byte 33, inside an opcode that needs 4 more bytes (opcode at byte 30)`,
  );
  path = write(checkpointZip(full.subarray(0, 40), {}));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: data.pkl is not a valid pickle: a GLOBAL name has no terminating newline (opcode at byte 36)`);
  path = write(checkpointZip(Buffer.concat([op.proto(2), op.emptyList, op.stop]), {}));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: data.pkl: the pickled object is not a dict, so not a state_dict`);
  const nested = Buffer.concat([op.proto(2), op.emptyDict, op.mark, op.str('model'), op.emptyDict, op.setItems, op.stop]);
  path = write(checkpointZip(nested, {}));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: data.pkl: state_dict entry 'model' is not a tensor`);
  path = write(checkpointZip(Buffer.concat([op.proto(2), Buffer.from([0xff]), op.stop]), {}));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: data.pkl is not a valid pickle: unknown or unsupported opcode 0xff (opcode at byte 2)`);
});

test('unknown dtype, missing and short storages, non-contiguous and out-of-range views name the tensor', () => {
  const six = { '0': f32([1, 2, 3, 4, 5, 6]) };
  let path = write(checkpointZip(stateDictPickle([{ ...w, storage: 'ComplexFloatStorage' }]), six));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: tensor 'w' has storage type 'torch.ComplexFloatStorage', whose dtype is not supported`);
  path = write(checkpointZip(stateDictPickle([{ ...w, key: '7' }]), six));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: tensor 'w': its storage entry 'archive/data/7' is missing from the archive`);
  path = write(checkpointZip(stateDictPickle([w]), { '0': f32([1, 2, 3]) }));
  throwsCheckpoint(
    () => TorchCheckpoint.open(path),
    `${path}: tensor 'w': storage entry 'archive/data/0' has 12 bytes, shorter than the 6 float32 elements (24 bytes) it declares`,
  );
  path = write(checkpointZip(stateDictPickle([{ ...w, size: [3, 2], stride: [1, 3] }]), six));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: tensor 'w' is not contiguous (size [3, 2], stride [1, 3])`);
  path = write(checkpointZip(stateDictPickle([{ ...w, offset: 2 }]), six));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: tensor 'w' needs elements [2, 8) of storage '0', which has 6`);
  path = write(checkpointZip(stateDictPickle([w]), six, { byteorder: 'big' }));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: archive/byteorder is 'big'; only little-endian checkpoints are supported`);
});

test('truncated and damaged archives', () => {
  const whole = readFileSync(pth);
  let path = write(whole.subarray(0, Math.floor(whole.length / 2)));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: zip archive without an end of central directory record (${Math.floor(whole.length / 2)} bytes)`);
  // The end record survives but the front of the file is gone: the central directory points past the end.
  path = write(Buffer.concat([whole.subarray(0, 1000), whole.subarray(whole.length - 22)]));
  throwsCheckpoint(() => TorchCheckpoint.open(path), /: the central directory \[\d+, \d+\) lies beyond the end of the 1022-byte file$/);
  // A storage whose central-directory size runs past the end of the file.
  const entries = [
    { name: 'a/data.pkl', data: stateDictPickle([w]) },
    { name: 'a/data/0', data: f32([1, 2, 3, 4, 5, 6]), declaredSize: 1_000_000 },
  ];
  path = write(makeZip(entries));
  throwsCheckpoint(() => TorchCheckpoint.open(path), /: entry 'a\/data\/0' needs bytes \[\d+, \d+\) but the file has \d+$/);
  path = write(Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: this is a legacy (pre-1.6, non-zip) torch.save file, which eye4eye does not read`);
  path = write(Buffer.from('hello, not a checkpoint'));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: not a zip archive (no end of central directory record), so not a PyTorch checkpoint`);
  path = write(makeZip([{ name: 'readme.txt', data: Buffer.from('hi') }]));
  throwsCheckpoint(() => TorchCheckpoint.open(path), `${path}: no <root>/data.pkl entry, so this zip is not a PyTorch checkpoint`);
  throwsCheckpoint(
    () => TorchCheckpoint.open(join(tmp, 'absent.pth')),
    new RegExp(`^${join(tmp, 'absent.pth').replace(/[.]/g, '\\.')}: cannot open \\(ENOENT`),
  );
});

test('a tensor truncated after opening is reported on read', () => {
  const bytes = checkpointZip(stateDictPickle([w]), { '0': f32([1, 2, 3, 4, 5, 6]) });
  const path = write(bytes);
  const ckpt = TorchCheckpoint.open(path);
  const info = ckpt.info('w');
  writeFileSync(path, bytes.subarray(0, info.byteOffset + 8));
  throwsCheckpoint(() => ckpt.read('w'), `${path}: tensor 'w' is truncated (read 8 of 24 bytes)`);
  throwsCheckpoint(() => ckpt.info('nope'), `${path}: no tensor named 'nope'`);
  ckpt.close();
  // The bytes read match what lies in the file at the reported offset.
  const fd = openSync(pth, 'r');
  const golden = TorchCheckpoint.open(pth);
  const i = golden.info('mask_decoder.hf_token.weight');
  const buf = Buffer.alloc(i.byteLength);
  readSync(fd, buf, 0, i.byteLength, i.byteOffset);
  closeSync(fd);
  const t = golden.read('mask_decoder.hf_token.weight');
  assert.ok(buf.equals(Buffer.from(t.data.buffer)));
  golden.close();
});
