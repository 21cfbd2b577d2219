import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTensorSource, SafetensorsFile, ShardedSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { SafetensorsError } from '../../src/errors.js';
import { tensor } from '../../src/tensor/tensor.js';

const tmp = mkdtempSync(join(tmpdir(), 'e4e-safetensors-errors-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

/** Write a file from a header (object or raw text) and a data section; `declared` overrides the length prefix. */
function rawFile(header: unknown, data = new Uint8Array(0), declared?: bigint): string {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declared ?? BigInt(text.length));
  const path = join(tmp, `${counter++}.safetensors`);
  writeFileSync(path, Buffer.concat([prefix, text, data]));
  return path;
}

function throwsSafetensors(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected SafetensorsError, got ${String(error)}`);
    assert.equal(error.code, 'E_SAFETENSORS');
    assert.equal(error.message.split('\n')[0], message);
    return true;
  });
}

const f32 = (shape: number[], offsets: unknown): unknown => ({ dtype: 'F32', shape, data_offsets: offsets });

test('file shorter than the 8-byte length prefix', () => {
  const path = join(tmp, 'short.safetensors');
  writeFileSync(path, Buffer.from([1, 2, 3]));
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: file is 3 bytes, shorter than the 8-byte header length`);
});

test('missing file', () => {
  const path = join(tmp, 'nope.safetensors');
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: cannot open (ENOENT: no such file or directory, open '${path}')`);
});

test('a folder is not a safetensors file', () => {
  throwsSafetensors(() => SafetensorsFile.open(tmp), `${tmp}: not a regular file`);
});

test('header length larger than the file', () => {
  const path = rawFile('{}', new Uint8Array(0), 1000n);
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: header length 1000 is larger than the 2 bytes after it`);
  const huge = rawFile('{}', new Uint8Array(0), 2n ** 63n);
  throwsSafetensors(() => SafetensorsFile.open(huge), `${huge}: header length 9223372036854775808 is larger than the 2 bytes after it`);
});

test('header that is not JSON, or not an object', () => {
  const bad = rawFile('{"a": ');
  throwsSafetensors(() => SafetensorsFile.open(bad), `${bad}: header is not valid JSON (Unexpected end of JSON input)`);
  const arr = rawFile([1, 2]);
  throwsSafetensors(() => SafetensorsFile.open(arr), `${arr}: header must be a JSON object, got an array`);
  const num = rawFile('12');
  throwsSafetensors(() => SafetensorsFile.open(num), `${num}: header must be a JSON object, got 12`);
});

test('bad __metadata__', () => {
  const a = rawFile({ __metadata__: { format: 1 } });
  throwsSafetensors(() => SafetensorsFile.open(a), `${a}: __metadata__ value 'format' must be a string, got 1`);
  const b = rawFile({ __metadata__: 'pt' });
  throwsSafetensors(() => SafetensorsFile.open(b), `${b}: __metadata__ must be an object of strings, got "pt"`);
});

test('bad tensor entries: not an object, unknown dtype, bad shape, bad data_offsets', () => {
  const entry = rawFile({ w: 3 });
  throwsSafetensors(() => SafetensorsFile.open(entry), `${entry}: tensor 'w' must be an object with dtype, shape and data_offsets, got 3`);
  const dtype = rawFile({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
  throwsSafetensors(() => SafetensorsFile.open(dtype), `${dtype}: tensor 'w' has unknown dtype "F8_E4M3"`);
  for (const shape of [[-1], [1.5], '2', null]) {
    const path = rawFile({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, new Uint8Array(4));
    throwsSafetensors(
      () => SafetensorsFile.open(path),
      `${path}: tensor 'w' has invalid shape ${JSON.stringify(shape)}; expected an array of non-negative integers`,
    );
  }
  for (const offsets of [[0], [8, 4], [0, 'x'], [-4, 0], undefined]) {
    const path = rawFile({ w: f32([1], offsets) }, new Uint8Array(8));
    throwsSafetensors(
      () => SafetensorsFile.open(path),
      `${path}: tensor 'w' has invalid data_offsets ${offsets === undefined ? 'undefined' : JSON.stringify(offsets)}; expected [begin, end] integers with 0 <= begin <= end`,
    );
  }
});

test('byte length that does not match dtype and shape', () => {
  const path = rawFile({ w: f32([2, 3], [0, 20]) }, new Uint8Array(24));
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: tensor 'w' of dtype F32 and shape [2, 3] needs 24 bytes, but data_offsets [0, 20] give 20`);
});

test('offsets beyond the data section (truncated file)', () => {
  const path = rawFile({ w: f32([4], [0, 16]) }, new Uint8Array(12));
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: tensor 'w' has data_offsets [0, 16] beyond the data section of 12 bytes`);
});

test('overlapping tensors, also across an empty tensor', () => {
  const path = rawFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Uint8Array(12));
  throwsSafetensors(() => SafetensorsFile.open(path), `${path}: tensors 'a' [0, 8] and 'b' [4, 12] overlap`);
  const nested = rawFile({ big: f32([4], [0, 16]), none: f32([0], [4, 4]), inner: f32([1], [8, 12]) }, new Uint8Array(16));
  throwsSafetensors(() => SafetensorsFile.open(nested), `${nested}: tensors 'big' [0, 16] and 'inner' [8, 12] overlap`);
  // Empty tensors may share offsets with anything.
  const ok = rawFile({ a: f32([1], [0, 4]), e: f32([0], [0, 0]), f: f32([0, 3], [4, 4]) }, new Uint8Array(4));
  const file = SafetensorsFile.open(ok);
  assert.deepEqual(file.names(), ['a', 'e', 'f']);
  file.close();
});

test('read of a missing tensor, and read after close', () => {
  const path = join(tmp, 'ok.safetensors');
  writeSafetensors(path, { w: tensor('float32', [1], Float32Array.from([1])) });
  const file = SafetensorsFile.open(path);
  throwsSafetensors(() => file.read('x'), `${path}: no tensor named 'x'`);
  throwsSafetensors(() => file.info('x'), `${path}: no tensor named 'x'`);
  assert.equal(file.has('x'), false);
  file.close();
  throwsSafetensors(() => file.read('w'), `${path}: cannot read tensor 'w', the file was closed`);
});

test('writer refuses a tensor named __metadata__', () => {
  throwsSafetensors(
    () => writeSafetensors(join(tmp, 'm.safetensors'), { __metadata__: tensor('float32', [0]) }),
    "writeSafetensors: '__metadata__' cannot be used as a tensor name",
  );
});

test('openTensorSource refuses other extensions', () => {
  const path = join(tmp, 'weights.bin');
  throwsSafetensors(() => openTensorSource(path), `${path}: expected a .safetensors file or a .safetensors.index.json shard index`);
});

function shardedDir(): string {
  const dir = mkdtempSync(join(tmp, 'sharded-'));
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), {
    'a.weight': tensor('float32', [2], Float32Array.from([1, 2])),
    'b.weight': tensor('int64', [1], BigInt64Array.from([9n])),
  });
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { 'c.weight': tensor('float16', [1], Uint16Array.from([0x3c00])) });
  return dir;
}

function writeIndex(dir: string, index: unknown): string {
  const path = join(dir, 'model.safetensors.index.json');
  writeFileSync(path, typeof index === 'string' ? index : JSON.stringify(index));
  return path;
}

test('sharded checkpoint: names, reads and infos across shards', () => {
  const dir = shardedDir();
  const path = writeIndex(dir, {
    metadata: { total_size: 26 },
    weight_map: {
      'a.weight': 'model-00001-of-00002.safetensors',
      'b.weight': 'model-00001-of-00002.safetensors',
      'c.weight': 'model-00002-of-00002.safetensors',
    },
  });
  const source = openTensorSource(path);
  assert.ok(source instanceof ShardedSafetensors);
  assert.equal(source.description, `sharded safetensors ${path} (2 shards)`);
  assert.deepEqual(source.metadata, { total_size: 26 });
  assert.deepEqual(source.names(), ['a.weight', 'b.weight', 'c.weight']);
  assert.deepEqual([...source.read('a.weight').data], [1, 2]);
  assert.deepEqual([...source.read('b.weight').data], [9n]);
  assert.deepEqual([...source.read('c.weight', { widen: true }).data], [1]);
  assert.equal(source.info('c.weight').file, join(dir, 'model-00002-of-00002.safetensors'));
  throwsSafetensors(() => source.read('d.weight'), `${path}: no tensor named 'd.weight'`);
  source.close();
  throwsSafetensors(() => source.read('a.weight'), `${join(dir, 'model-00001-of-00002.safetensors')}: cannot read tensor 'a.weight', the file was closed`);
});

test('sharded checkpoint errors: bad JSON, no weight_map, bad entry, missing shard, tensor not in shard', () => {
  const dir = shardedDir();
  const missingIndex = join(dir, 'none.safetensors.index.json');
  throwsSafetensors(
    () => ShardedSafetensors.open(missingIndex),
    `${missingIndex}: cannot read shard index (ENOENT: no such file or directory, open '${missingIndex}')`,
  );
  let path = writeIndex(dir, '{"weight_map": ');
  throwsSafetensors(() => ShardedSafetensors.open(path), `${path}: shard index is not valid JSON (Unexpected end of JSON input)`);
  path = writeIndex(dir, { metadata: {} });
  throwsSafetensors(
    () => ShardedSafetensors.open(path),
    `${path}: shard index must be an object with a 'weight_map' object mapping tensor names to shard files`,
  );
  path = writeIndex(dir, { weight_map: { 'a.weight': 3 } });
  throwsSafetensors(() => ShardedSafetensors.open(path), `${path}: weight_map entry 'a.weight' must be a shard file name, got 3`);
  path = writeIndex(dir, { weight_map: { 'a.weight': 'model-00003-of-00002.safetensors' } });
  throwsSafetensors(
    () => ShardedSafetensors.open(path),
    `${path}: shard 'model-00003-of-00002.safetensors' (holding 'a.weight') does not exist at ${join(dir, 'model-00003-of-00002.safetensors')}`,
  );
  path = writeIndex(dir, { weight_map: { 'a.weight': 'model-00002-of-00002.safetensors' } });
  throwsSafetensors(
    () => ShardedSafetensors.open(path),
    `${path}: tensor 'a.weight' is mapped to shard 'model-00002-of-00002.safetensors', which has no such tensor`,
  );
});
