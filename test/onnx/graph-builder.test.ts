import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, Scope, float } from '../../src/onnx/graph-builder.js';
import * as ops from '../../src/onnx/ops.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { modelToBytes, saveModel } from '../../src/onnx/save.js';
import { IR_VERSION, ONNX_OPSET } from '../../src/onnx/format.js';
import { Session } from '../../src/runtime/session.js';
import { float32 } from '../../src/tensor/tensor.js';

test('constants are deduplicated and named by value', () => {
  const g = new GraphBuilder('g');
  const a = ops.constFloat(g, 1e-5);
  const b = ops.constFloat(g, 1e-5);
  const c = ops.constInt64(g, [0, 2, 1]);
  assert.equal(a.name, '/constants/FLOAT/0.00001');
  assert.equal(a.name, b.name);
  assert.equal(c.name, '/constants/INT64/[0, 2, 1]');
  assert.equal(g.listInitializers().length, 2);
});

test('nodes are path-named, repeated paths get suffixes, outputs are node/output_i', () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m').child('up_blocks', 1);
  const x = g.input('x', 'float32', ['B', 3]);
  const y = ops.add(s, x, x);
  const z = ops.add(s, y, x);
  assert.equal(y.name, '/m/up_blocks.1/Add/output_0');
  assert.equal(z.name, '/m/up_blocks.1/Add_1/output_0');
});

test('the model is sorted topologically and declares IR/opset once', () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  const x = g.input('x', 'float32', [2]);
  // Build a node whose input is produced by a node added later.
  const late = { name: '/m/Late/output_0' };
  const early = ops.neg(s, late, { name: 'Early' });
  g.addNode('Abs', [x], {}, { name: '/m/Late' });
  g.output(early, 'y', 'float32', [2]);
  const model = decodeModel(modelToBytes(g));
  assert.equal(model.irVersion, IR_VERSION);
  assert.deepEqual(
    model.opsetImport.map((o) => o.version),
    [ONNX_OPSET, 1],
  );
  assert.deepEqual(
    model.graph.node.map((n) => n.name),
    ['/m/Late', '/m/Early', '/outputs/y'],
  );
});

test('a use of an undefined value is a build error naming node and value', () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  ops.neg(s, { name: 'nowhere' });
  assert.throws(() => modelToBytes(g), /node '\/m\/Neg' \(Neg\) uses undefined value 'nowhere'/);
});

test('float attributes must be wrapped; integer attributes are checked', () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  const x = g.input('x', 'float32', [2]);
  assert.throws(() => s.op('LeakyRelu', [x], { alpha: 0.1 }), /attribute 'alpha' = 0.1 is not an integer/);
  s.op('LeakyRelu', [x], { alpha: float(0.1) });
});

// ---- numerical checks against independent TypeScript computations ------------------------------------------

function rand(n: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 1073741824 - 1;
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('conv 3x3 + group norm + SiLU match a direct TypeScript computation', async () => {
  const [B, C, H, W, O, G] = [2, 4, 5, 6, 6, 2];
  const x = rand(B * C * H * W, 1);
  const w = rand(O * C * 9, 2);
  const bias = rand(O, 3);
  const gamma = rand(O, 4);
  const beta = rand(O, 5);
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  const xin = g.input('x', 'float32', ['B', C, 'H', 'W']);
  const conv = ops.conv(s, xin, ops.constTensor(g, w, [O, C, 3, 3]), ops.constTensor(g, bias, [O]), { pads: [1, 1, 1, 1] });
  const normed = ops.groupNorm(s.child('norm'), conv, ops.constTensor(g, gamma, [O]), ops.constTensor(g, beta, [O]), {
    groups: G,
    epsilon: 1e-5,
    spatialRank: 2,
  });
  g.output(ops.silu(s, normed), 'y', 'float32', ['B', O, 'H', 'W']);
  const session = await Session.create(modelToBytes(g));
  const y = (await session.run({ x: float32([B, C, H, W], x) }))['y']!;
  await session.dispose();

  const ref = new Float64Array(B * O * H * W);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          let acc = bias[o]!;
          for (let c = 0; c < C; c++)
            for (let di = -1; di <= 1; di++)
              for (let dj = -1; dj <= 1; dj++) {
                const ii = i + di;
                const jj = j + dj;
                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                acc += x[((b * C + c) * H + ii) * W + jj]! * w[((o * C + c) * 3 + di + 1) * 3 + dj + 1]!;
              }
          ref[((b * O + o) * H + i) * W + j] = acc;
        }
  const per = (O / G) * H * W;
  for (let b = 0; b < B; b++)
    for (let grp = 0; grp < G; grp++) {
      const start = (b * O + grp * (O / G)) * H * W;
      let mean = 0;
      for (let k = 0; k < per; k++) mean += ref[start + k]!;
      mean /= per;
      let v = 0;
      for (let k = 0; k < per; k++) v += (ref[start + k]! - mean) ** 2;
      v /= per;
      for (let k = 0; k < per; k++) {
        const o = grp * (O / G) + Math.floor(k / (H * W));
        const n = ((ref[start + k]! - mean) / Math.sqrt(v + 1e-5)) * gamma[o]! + beta[o]!;
        ref[start + k] = n / (1 + Math.exp(-n));
      }
    }
  assert.deepEqual(y.dims, [B, O, H, W]);
  assert.ok(maxAbsDiff(y.data as Float32Array, ref) < 1e-5, `max diff ${maxAbsDiff(y.data as Float32Array, ref)}`);
});

test('multi-head attention with linear projections matches a direct computation', async () => {
  const [B, S, T, Hh, D] = [2, 7, 5, 2, 3];
  const C = Hh * D;
  const xq = rand(B * S * C, 11);
  const ctx = rand(B * T * C, 12);
  const wq = rand(C * C, 13);
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/attn');
  const x = g.input('x', 'float32', ['B', 'S', C]);
  const c = g.input('ctx', 'float32', ['B', 'T', C]);
  const q = ops.matMul(s, x, ops.transpose(s, ops.constTensor(g, wq, [C, C]), [1, 0]));
  g.output(ops.multiHeadAttention(s, q, c, c, Hh), 'y', 'float32', ['B', 'S', C]);
  const session = await Session.create(modelToBytes(g));
  const y = (await session.run({ x: float32([B, S, C], xq), ctx: float32([B, T, C], ctx) }))['y']!.data as Float32Array;
  await session.dispose();
  const ref = new Float64Array(B * S * C);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < S; i++) {
      const qrow = new Float64Array(C);
      for (let o = 0; o < C; o++) for (let k = 0; k < C; k++) qrow[o]! += xq[(b * S + i) * C + k]! * wq[o * C + k]!;
      for (let h = 0; h < Hh; h++) {
        const scores = Array.from({ length: T }, (_, j) => {
          let d = 0;
          for (let e = 0; e < D; e++) d += qrow[h * D + e]! * ctx[(b * T + j) * C + h * D + e]!;
          return d / Math.sqrt(D);
        });
        const m = Math.max(...scores);
        const ex = scores.map((v) => Math.exp(v - m));
        const z = ex.reduce((p, v) => p + v, 0);
        for (let e = 0; e < D; e++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += (ex[j]! / z) * ctx[(b * T + j) * C + h * D + e]!;
          ref[(b * S + i) * C + h * D + e] = acc;
        }
      }
    }
  assert.ok(maxAbsDiff(y, ref) < 1e-5, `max diff ${maxAbsDiff(y, ref)}`);
});

test('ArgMax picks the first of equal maxima (numpy tie rule)', async () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  const x = g.input('x', 'float32', [2, 4]);
  g.output(ops.argMax(s, x, 1, false), 'i', 'int64', [2]);
  const session = await Session.create(modelToBytes(g));
  const out = (await session.run({ x: float32([2, 4], [1, 3, 3, 0, 5, 5, 5, 5]) }))['i']!;
  assert.deepEqual(Array.from(out.data as BigInt64Array, Number), [1, 0]);
});

test('If runs the branch chosen by a graph input, branches read outer values', async () => {
  const g = new GraphBuilder('g');
  const s = new Scope(g, '/m');
  const x = g.input('x', 'float32', [3]);
  const flag = g.input('flag', 'bool', []);
  const doubled = ops.mul(s, x, ops.constFloat(g, 2));
  const thenG = g.subgraph('then');
  thenG.output(ops.neg(new Scope(thenG, '/m/then'), doubled), 'then_out', 'float32', [3]);
  const elseG = g.subgraph('else');
  elseG.output(ops.identity(new Scope(elseG, '/m/else'), x), 'else_out', 'float32', [3]);
  const [y] = ops.ifElse(s, flag, thenG, elseG, 1);
  g.output(y!, 'y', 'float32', [3]);
  const session = await Session.create(modelToBytes(g));
  const run = async (f: boolean): Promise<number[]> =>
    Array.from(
      (
        await session.run({
          x: float32([3], [1, 2, 3]),
          flag: { dtype: 'bool', dims: [], data: Uint8Array.of(f ? 1 : 0) },
        })
      )['y']!.data as Float32Array,
    );
  assert.deepEqual(await run(true), [-2, -4, -6]);
  assert.deepEqual(await run(false), [1, 2, 3]);
});

test('saveModel: weights point into the original file at unaligned offsets, other tensors go to .onnx.data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-save-'));
  try {
    const weights = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const file = join(dir, 'weights.bin');
    writeFileSync(file, Buffer.concat([Buffer.from('xyz'), Buffer.from(weights.buffer)]));
    const g = new GraphBuilder('g');
    const s = new Scope(g, '/lin');
    const x = g.input('x', 'float32', ['B', 3]);
    const w = g.initializer({ name: 'lin.weight', dtype: 'float32', dims: [2, 3], data: { kind: 'file', file, offset: 3, length: 24 } });
    const big = ops.constFloat(g, new Array<number>(100).fill(0.25));
    const sum = ops.reduceSum(s, big, [0], true);
    g.output(ops.add(s, ops.gemm(s, x, w, null, { transB: true }), sum), 'y', 'float32', ['B', 2]);
    const outDir = join(dir, 'model');
    rmSync(outDir, { recursive: true, force: true });
    await import('node:fs').then((fs) => fs.mkdirSync(outDir));
    const path = saveModel(g, outDir, 'lin');
    const model = decodeModel(readFileSync(path));
    const lin = model.graph.initializer.find((i) => i.name === 'lin.weight')!;
    assert.deepEqual(
      lin.externalData?.map((e) => [e.key, e.value]),
      [
        ['location', 'lin.weights.0.weights.bin'],
        ['offset', '3'],
        ['length', '24'],
      ],
    );
    const session = await Session.create(path);
    const y = (await session.run({ x: float32([1, 3], [1, 1, 1]) }))['y']!;
    assert.deepEqual(Array.from(y.data as Float32Array), [6 + 25, 15 + 25]);
    await session.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
