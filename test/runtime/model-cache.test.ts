import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from '../../src/onnx/graph-builder.js';
import * as ops from '../../src/onnx/ops.js';
import { WeightScope, WeightSet } from '../../src/onnx/weight-scope.js';
import { openTensorSource, writeSafetensors } from '../../src/io/safetensors.js';
import { defaultCacheDir, ModelCache } from '../../src/runtime/model-cache.js';
import { Session } from '../../src/runtime/session.js';
import { float32 } from '../../src/tensor/tensor.js';

function tinyLinearModel(dir: string): string {
  const file = join(dir, 'w.safetensors');
  writeSafetensors(file, { 'lin.weight': float32([2, 3], [1, 2, 3, 4, 5, 6]), 'lin.bias': float32([2], [10, 20]) });
  return file;
}

function buildFrom(file: string): GraphBuilder {
  const g = new GraphBuilder('lin');
  const weights = WeightSet.fromSource(openTensorSource(file));
  const scope = new WeightScope(g, '/m', weights, '').child('lin');
  const x = g.input('x', 'float32', ['B', 3]);
  const y = ops.add(scope, ops.gemm(scope, x, scope.weight('weight', [2, 3]), null, { transB: true }), scope.weight('bias', [2]));
  weights.assertAllUsed();
  g.output(y, 'y', 'float32', ['B', 2]);
  return g;
}

async function runLinear(modelPath: string): Promise<number[]> {
  const session = await Session.create(modelPath);
  const y = (await session.run({ x: float32([1, 3], [1, 1, 1]) }))['y']!;
  await session.dispose();
  return Array.from(y.data as Float32Array);
}

test('cache: built once, reused, rebuilt when corrupt or when the weights change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-cache-'));
  try {
    const file = tinyLinearModel(dir);
    const cache = new ModelCache(join(dir, 'cache'));
    let builds = 0;
    const request = {
      name: 'lin',
      config: { a: 1 },
      weightFiles: [file],
      build: () => {
        builds++;
        return { graph: buildFrom(file), meta: { sites: ['lin'], n: 2 } };
      },
    };
    const first = cache.obtain(request);
    assert.equal(first.built, true);
    assert.deepEqual(await runLinear(first.modelPath), [16, 35]);
    assert.deepEqual(first.meta, { sites: ['lin'], n: 2 });
    const second = cache.obtain(request);
    assert.deepEqual(second.meta, { sites: ['lin'], n: 2 }, 'the build meta comes back from the cache entry');
    assert.equal(second.built, false);
    assert.equal(second.modelPath, first.modelPath);
    assert.equal(builds, 1);
    // Another config is another entry.
    assert.notEqual(cache.obtain({ ...request, config: { a: 2 } }).key, first.key);
    // A truncated model file is detected and rebuilt.
    truncateSync(first.modelPath, 10);
    const repaired = cache.obtain(request);
    assert.equal(repaired.built, true);
    assert.deepEqual(await runLinear(repaired.modelPath), [16, 35]);
    // New weights (same shapes) give a new key.
    rmSync(file);
    writeSafetensors(file, { 'lin.weight': float32([2, 3], [0, 0, 0, 0, 0, 0]), 'lin.bias': float32([2], [1, 2]) });
    const fresh = cache.obtain(request);
    assert.notEqual(fresh.key, first.key);
    assert.deepEqual(await runLinear(fresh.modelPath), [1, 2]);
    // No temporary folders are left behind.
    assert.deepEqual(
      readdirSync(join(dir, 'cache', 'graphs')).filter((n) => n.startsWith('.tmp')),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache: a failing build leaves nothing behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-cache-'));
  try {
    const file = tinyLinearModel(dir);
    const cache = new ModelCache(join(dir, 'cache'));
    assert.throws(
      () =>
        cache.obtain({
          name: 'bad',
          config: {},
          weightFiles: [file],
          build: () => {
            const g = new GraphBuilder('bad');
            const weights = WeightSet.fromSource(openTensorSource(file));
            new WeightScope(g, '/m', weights, '').child('lin').weight('weight', [3, 3]);
            return { graph: g };
          },
        }),
      /w\.safetensors: lin\.weight: expected \[3, 3\], got \[2, 3\]/,
    );
    assert.deepEqual(readdirSync(join(dir, 'cache', 'graphs')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache: two processes building the same entry at once both get a complete entry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-cache-'));
  try {
    const file = tinyLinearModel(dir);
    const here = fileURLToPath(new URL('.', import.meta.url));
    const script = `
      import { ModelCache } from ${JSON.stringify(join(here, '../../src/runtime/model-cache.js'))};
      import { GraphBuilder } from ${JSON.stringify(join(here, '../../src/onnx/graph-builder.js'))};
      import * as ops from ${JSON.stringify(join(here, '../../src/onnx/ops.js'))};
      import { WeightScope, WeightSet } from ${JSON.stringify(join(here, '../../src/onnx/weight-scope.js'))};
      import { openTensorSource } from ${JSON.stringify(join(here, '../../src/io/safetensors.js'))};
      const file = ${JSON.stringify(file)};
      const entry = new ModelCache(${JSON.stringify(join(dir, 'cache'))}).obtain({ name: 'lin', config: {}, weightFiles: [file], build: () => {
        const g = new GraphBuilder('lin');
        const weights = WeightSet.fromSource(openTensorSource(file));
        const s = new WeightScope(g, '/m', weights, '').child('lin');
        const x = g.input('x', 'float32', ['B', 3]);
        const t0 = Date.now(); while (Date.now() - t0 < 200) {}
        g.output(ops.add(s, ops.gemm(s, x, s.weight('weight', [2, 3]), null, { transB: true }), s.weight('bias', [2])), 'y', 'float32', ['B', 2]);
        return { graph: g };
      } });
      console.log(entry.modelPath);
    `;
    const runOne = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}`))));
      });
    const [a, b] = await Promise.all([runOne(), runOne()]);
    assert.equal(a, b);
    assert.deepEqual(await runLinear(a), [16, 35]);
    assert.deepEqual(
      readdirSync(join(dir, 'cache', 'graphs')).filter((n) => n.startsWith('.tmp')),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache location follows the platform and E4E_CACHE_DIR', () => {
  assert.equal(defaultCacheDir({ E4E_CACHE_DIR: '/x/y' }, 'linux'), '/x/y');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }, 'linux'), '/xdg/eye4eye');
  assert.equal(defaultCacheDir({ LOCALAPPDATA: 'C:/L' }, 'win32'), join('C:/L', 'eye4eye', 'Cache'));
  assert.match(defaultCacheDir({}, 'darwin'), /Library\/Caches\/eye4eye$/);
});

test('external data beyond 2 GiB: a weight stored after 2.2 GB of (sparse) padding is read at its 64-bit offset', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-big-'));
  try {
    // A safetensors file whose first tensor is 2.2 GB of zeros (a sparse hole: no disk, no time) and whose second
    // tensor lies beyond the 2^31 boundary. Only the second one is referenced by the graph.
    const padBytes = 2_200_000_000;
    const header = JSON.stringify({
      pad: { dtype: 'U8', shape: [padBytes], data_offsets: [0, padBytes] },
      'lin.weight': { dtype: 'F32', shape: [1, 2], data_offsets: [padBytes, padBytes + 8] },
    });
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
    const file = join(dir, 'big.safetensors');
    const fd = openSync(file, 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(padded.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(padded));
    const dataStart = 8 + padded.length;
    ftruncateSync(fd, dataStart + padBytes + 8);
    writeSync(fd, Buffer.from(Float32Array.of(3, 4).buffer), 0, 8, dataStart + padBytes);
    closeSync(fd);

    const source = openTensorSource(file);
    assert.ok(source.info('lin.weight').byteOffset > 2 ** 31);
    const cache = new ModelCache(join(dir, 'cache'));
    const entry = cache.obtain({
      name: 'big',
      config: {},
      weightFiles: [file],
      build: () => {
        const g = new GraphBuilder('big');
        const weights = WeightSet.fromSource(source);
        const s = new WeightScope(g, '/m', weights, '').child('lin');
        const x = g.input('x', 'float32', ['B', 2]);
        g.output(ops.gemm(s, x, s.weight('weight', [1, 2]), null, { transB: true }), 'y', 'float32', ['B', 1]);
        return { graph: g };
      },
    });
    assert.ok(existsSync(entry.modelPath));
    const session = await Session.create(entry.modelPath);
    const y = (await session.run({ x: float32([1, 2], [1, 10]) }))['y']!;
    assert.deepEqual(Array.from(y.data as Float32Array), [43]);
    await session.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
