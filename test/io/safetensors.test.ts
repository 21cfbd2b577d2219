import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTensorSource, SafetensorsFile, serializeSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { SafetensorsError } from '../../src/errors.js';
import { numel, tensor, type DType, type Tensor } from '../../src/tensor/tensor.js';
import { sd1TinyDir, sd1TinyModelDir } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'e4e-safetensors-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const tmpPath = (name = 'x.safetensors'): string => join(tmp, `${counter++}-${name}`);

const samples: Record<string, Tensor> = {
  f32: tensor('float32', [2, 3], Float32Array.from([0, 1.5, -2, 3.25, 1e-8, -0])),
  f64: tensor('float64', [2], Float64Array.from([Math.PI, -1e300])),
  f16: tensor('float16', [3], Uint16Array.from([0x3e00, 0xc000, 0x7c00])), // 1.5, -2, +inf
  bf16: tensor('bfloat16', [2], Uint16Array.from([0x3fc0, 0xc080])), // 1.5, -4
  i64: tensor('int64', [1, 3], BigInt64Array.from([0n, -5n, 2n ** 60n + 7n])),
  i32: tensor('int32', [2], Int32Array.from([-2147483648, 2147483647])),
  i16: tensor('int16', [2], Int16Array.from([-32768, 12345])),
  i8: tensor('int8', [3], Int8Array.from([-128, 0, 127])),
  u8: tensor('uint8', [2, 2], Uint8Array.from([0, 1, 254, 255])),
  u16: tensor('uint16', [1], Uint16Array.from([65535])),
  flag: tensor('bool', [2], Uint8Array.from([1, 0])),
  scalar: tensor('float32', [], Float32Array.from([42])),
  empty: tensor('float32', [0, 4]),
};
const expectedDtypes: Record<string, DType> = {
  f32: 'float32',
  f64: 'float64',
  f16: 'float16',
  bf16: 'bfloat16',
  i64: 'int64',
  i32: 'int32',
  i16: 'int16',
  i8: 'int8',
  u8: 'uint8',
  u16: 'uint16',
  flag: 'bool',
  scalar: 'float32',
  empty: 'float32',
};

test('round trip of every dtype, names sorted, metadata kept', () => {
  const path = tmpPath();
  writeSafetensors(path, samples, { format: 'pt', note: 'hello' });
  const file = SafetensorsFile.open(path);
  try {
    assert.deepEqual(file.names(), Object.keys(samples).sort());
    assert.deepEqual({ ...file.metadata }, { format: 'pt', note: 'hello' });
    for (const [name, original] of Object.entries(samples)) {
      const got = file.read(name);
      assert.equal(got.dtype, expectedDtypes[name], name);
      assert.deepEqual(got.dims, original.dims, name);
      assert.deepEqual(got.data, original.data, name);
    }
    const i64 = file.read('i64');
    assert.ok(i64.data instanceof BigInt64Array);
    assert.equal(i64.data[2], 2n ** 60n + 7n);
  } finally {
    file.close();
  }
});

test('widen turns float16 and bfloat16 into float32 and leaves other dtypes alone', () => {
  const path = tmpPath();
  writeSafetensors(path, samples);
  const file = SafetensorsFile.open(path);
  const f16 = file.read('f16', { widen: true });
  assert.equal(f16.dtype, 'float32');
  assert.deepEqual([...f16.data], [1.5, -2, Infinity]);
  const bf16 = file.read('bf16', { widen: true });
  assert.equal(bf16.dtype, 'float32');
  assert.deepEqual([...bf16.data], [1.5, -4]);
  assert.equal(file.read('f16').dtype, 'float16');
  assert.equal(file.read('i32', { widen: true }).dtype, 'int32');
  file.close();
});

test('header layout: tensors sorted (integer-like names too), __metadata__ last, compact JSON padded with spaces to 8 bytes', () => {
  const bytes = serializeSafetensors(
    {
      b: tensor('float32', [1], Float32Array.from([2])),
      a: tensor('uint8', [2], Uint8Array.from([7, 9])),
      10: tensor('int8', [1], Int8Array.from([-1])),
    },
    { k: 'v' },
  );
  const json =
    '{"10":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[3,7]},"__metadata__":{"k":"v"}}';
  const padded = Math.ceil(json.length / 8) * 8;
  assert.equal(bytes.readBigUInt64LE(0), BigInt(padded));
  assert.equal(bytes.subarray(8, 8 + padded).toString('utf8'), json + ' '.repeat(padded - json.length));
  assert.deepEqual([...bytes.subarray(8 + padded)], [255, 7, 9, 0, 0, 0, 64]);
});

test('serialization reproduces the reference writer byte for byte (fixture files)', () => {
  for (const path of [join(sd1TinyModelDir, 'text_encoder', 'model.safetensors'), join(sd1TinyDir, 'io.safetensors')]) {
    const file = SafetensorsFile.open(path);
    const tensors: Record<string, Tensor> = {};
    for (const name of file.names()) tensors[name] = file.read(name);
    const metadata = Object.keys(file.metadata).length > 0 ? { ...file.metadata } : undefined;
    file.close();
    assert.ok(serializeSafetensors(tensors, metadata).equals(readFileSync(path)), path);
  }
});

test('writeSafetensors writes the same bytes as serializeSafetensors, atomically, and overwrites', () => {
  const dir = mkdtempSync(join(tmp, 'atomic-'));
  const path = join(dir, 'out.safetensors');
  writeFileSync(path, 'old content');
  writeSafetensors(path, samples, { a: 'b' });
  assert.ok(readFileSync(path).equals(serializeSafetensors(samples, { a: 'b' })));
  assert.deepEqual(readdirSync(dir), ['out.safetensors']); // no temp file left behind
  const bad = join(dir, 'missing', 'x.safetensors');
  assert.throws(
    () => writeSafetensors(bad, samples),
    (error: unknown) => {
      assert.ok(error instanceof SafetensorsError);
      // The temp name is random: `${bad}.tmp-<pid>-<rand>`.
      assert.ok(
        error.message.startsWith(`${bad}: cannot write safetensors file (ENOENT: no such file or directory, open '${bad}.tmp-${process.pid}-`),
        error.message,
      );
      return true;
    },
  );
});

test('info gives absolute byte offsets that hold exactly the tensor bytes', () => {
  const path = tmpPath();
  writeSafetensors(path, samples);
  const file = SafetensorsFile.open(path);
  const headerLength = Number(readFileSync(path).readBigUInt64LE(0));
  let expectedOffset = 8 + headerLength;
  const fd = openSync(path, 'r');
  for (const name of file.names()) {
    const info = file.info(name);
    assert.equal(info.file, path);
    assert.equal(info.byteOffset, expectedOffset, name);
    const original = samples[name]!;
    assert.equal(info.byteLength, original.data.byteLength, name);
    const bytes = Buffer.alloc(info.byteLength);
    readSync(fd, bytes, 0, info.byteLength, info.byteOffset);
    assert.ok(bytes.equals(Buffer.from(original.data.buffer, original.data.byteOffset, original.data.byteLength)), name);
    expectedOffset += info.byteLength;
  }
  closeSync(fd);
  file.close();
});

test('a tensor 3 GB into a sparse file is read at its offset without loading the file', () => {
  const begin = 3_000_000_000;
  const header = Buffer.from(JSON.stringify({ far: { dtype: 'F32', shape: [2], data_offsets: [begin, begin + 8] } }));
  const path = tmpPath();
  const fd = openSync(path, 'w');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  writeSync(fd, prefix, 0, 8, 0);
  writeSync(fd, header, 0, header.length, 8);
  writeSync(fd, Buffer.from(Float32Array.from([1.25, -7]).buffer), 0, 8, 8 + header.length + begin);
  closeSync(fd);
  const file = SafetensorsFile.open(path);
  assert.equal(file.info('far').byteOffset, 8 + header.length + begin);
  assert.deepEqual([...file.read('far').data], [1.25, -7]);
  file.close();
  rmSync(path);
});

test('every tensor of the fixture model files reads with the size its header gives', () => {
  const expectedCounts: Record<string, number> = {};
  for (const component of ['unet', 'vae', 'text_encoder']) {
    const name = component === 'text_encoder' ? 'model.safetensors' : 'diffusion_pytorch_model.safetensors';
    const source = openTensorSource(join(sd1TinyModelDir, component, name));
    let count = 0;
    for (const tensorName of source.names()) {
      const info = source.info(tensorName);
      const t = source.read(tensorName, { widen: true });
      assert.equal(t.data.length, numel(info.dims), tensorName);
      if (t.dtype === 'float32') assert.ok((t.data as Float32Array).every(Number.isFinite), tensorName);
      count++;
    }
    expectedCounts[component] = count;
    if (component === 'text_encoder') {
      const ids = source.read('text_model.embeddings.position_ids');
      assert.equal(ids.dtype, 'int64');
      assert.deepEqual(ids.dims, [1, 77]);
      assert.deepEqual(
        [...ids.data],
        Array.from({ length: 77 }, (_, i) => BigInt(i)),
      );
    }
    source.close();
  }
  assert.deepEqual(Object.keys(expectedCounts), ['unet', 'vae', 'text_encoder']);
  assert.ok(Object.values(expectedCounts).every((n) => n > 10));
});
