/**
 * bench/flops.ts: the FLOP rules on shapes, and a count from onnxruntime's profiler on a small graph whose FLOPs are
 * counted here by hand (Convs with stride and groups, a MatMul on a weight, a batched MatMul of two activations, a
 * transposed Gemm, MultiHeadAttention, an If whose taken branch holds a MatMul).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countFlops, nodeFlops, profiledCounts } from '../bench/flops.js';
import { GraphBuilder, Scope } from '../src/onnx/graph-builder.js';
import * as ops from '../src/onnx/ops.js';
import { modelToBytes } from '../src/onnx/save.js';
import { float32 } from '../src/tensor/tensor.js';

const counted = (flops: number) => ({ kind: 'counted', flops });

test('FLOP rules: MatMul, FusedMatMul, Gemm, Conv, MultiHeadAttention; other ops ignored', () => {
  // [2, 64, 8] x [8, 16] (B pre-packed: absent from the trace) -> [2, 64, 16]
  assert.deepEqual(nodeFlops('MatMul', [[2, 64, 8]], [[2, 64, 16]]), counted(2 * 2 * 64 * 16 * 8));
  assert.deepEqual(nodeFlops('MatMul', [[8], [8, 16]], [[16]]), counted(2 * 16 * 8));
  // FusedMatMul with A transposed: A [4, 7, 5] is [.., K, M], Y [4, 5, 9]
  assert.deepEqual(nodeFlops('FusedMatMul', [[4, 7, 5]], [[4, 5, 9]]), counted(2 * 4 * 5 * 9 * 7));
  // Gemm Y [128, 32] from A [128, 16] or A^T [16, 128]
  assert.deepEqual(nodeFlops('Gemm', [[128, 16], [32]], [[128, 32]]), counted(2 * 128 * 32 * 16));
  assert.deepEqual(nodeFlops('Gemm', [[16, 128]], [[128, 32]]), counted(2 * 128 * 32 * 16));
  // Conv: W [Cout, Cin/group, kh, kw]
  assert.deepEqual(
    nodeFlops(
      'Conv',
      [
        [2, 8, 16, 16],
        [8, 4, 3, 3],
      ],
      [[2, 8, 8, 8]],
    ),
    counted(2 * 8 * 4 * 3 * 3 * 8 * 8 * 2),
  );
  // MultiHeadAttention: 4 B H S T D with H D = 16
  assert.deepEqual(
    nodeFlops(
      'MultiHeadAttention',
      [
        [2, 64, 16],
        [2, 5, 16],
        [2, 5, 16],
      ],
      [[2, 64, 16]],
    ),
    counted(4 * 2 * 64 * 5 * 16),
  );
  assert.deepEqual(nodeFlops('Softmax', [[2, 64, 64]], [[2, 64, 64]]), { kind: 'ignored' });
  assert.equal(nodeFlops('Conv', [[2, 8, 16, 16]], [[2, 8, 8, 8]]).kind, 'unreadable');
  const c = countFlops([
    { name: 'a', op: 'MatMul', inputs: [[3, 4]], outputs: [[3, 5]] },
    { name: 'b', op: 'Add', inputs: [[3, 5]], outputs: [[3, 5]] },
    { name: 'c', op: 'Conv', inputs: [[1, 1, 4, 4]], outputs: [[1, 1, 4, 4]] },
  ]);
  assert.equal(c.flops, 120);
  assert.deepEqual(c.byOp, { MatMul: { nodes: 1, flops: 120 } });
  assert.deepEqual(c.ignored, { Add: 1 });
  assert.equal(c.unreadable.length, 1);
  assert.equal(c.nodeRuns, 3);
});

test("onnxruntime's profile of a small graph gives the FLOPs counted by hand", async () => {
  const g = new GraphBuilder('flops');
  const s = new Scope(g, '/m');
  const w = (dims: number[]) => ops.constTensor(g, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01), dims);
  const x = g.input('x', 'float32', [2, 3, 16, 16]);
  const ctx = g.input('ctx', 'float32', [2, 5, 16]);
  const flag = g.input('flag', 'bool', []);
  let h = ops.conv(s.child('c1'), x, w([8, 3, 3, 3]), w([8]), { pads: [1, 1, 1, 1] }); // [2, 8, 16, 16]
  h = ops.silu(s.child('act'), h);
  h = ops.conv(s.child('c2'), h, w([8, 4, 3, 3]), null, { pads: [1, 1, 1, 1], strides: [2, 2], group: 2 }); // [2, 8, 8, 8]
  const t = ops.transpose(s, ops.reshape(s, h, [2, 8, 64]), [0, 2, 1]); // [2, 64, 8]
  const q = ops.add(s, ops.matMul(s.child('proj'), t, w([8, 16])), w([16])); // [2, 64, 16] (MatMul + Add -> Gemm)
  const scores = ops.matMul(s.child('scores'), q, ops.transpose(s.child('qT'), q, [0, 2, 1])); // [2, 64, 64]
  const flat = ops.reshape(s.child('flat'), q, [128, 16]);
  const gm = ops.gemm(s.child('gemm'), flat, w([32, 16]), null, { transB: true }); // [128, 32]
  const att = ops.multiHeadAttention(s, q, ctx, ctx, 2); // [2, 64, 16]
  const thenG = g.subgraph('/m/then');
  thenG.output(ops.matMul(new Scope(thenG, '/m/then'), att, w([16, 4])), '/m/then/y', 'float32', [2, 64, 4]);
  const elseG = g.subgraph('/m/else');
  const es = new Scope(elseG, '/m/else');
  elseG.output(ops.matMul(es.child('b'), ops.matMul(es.child('a'), att, w([16, 16])), w([16, 4])), '/m/else/y', 'float32', [2, 64, 4]);
  const [branch] = ops.ifElse(s, flag, thenG, elseG, 1);
  g.output(scores, 'scores', 'float32', [2, 64, 64]);
  g.output(gm, 'gemm', 'float32', [128, 32]);
  g.output(branch!, 'branch', 'float32', [2, 64, 4]);

  const feeds = (flag: boolean) => ({
    x: float32([2, 3, 16, 16]),
    ctx: float32([2, 5, 16]),
    flag: { dtype: 'bool' as const, dims: [], data: Uint8Array.of(flag ? 1 : 0) },
  });
  // Two runs in one profiled session: the trace is split by run; the If takes the other branch in the second.
  const [count, other] = await profiledCounts(modelToBytes(g), { name: 'flops-test' }, [
    (session) => session.run(feeds(true)),
    (session) => session.run(feeds(false)),
  ]);
  const byHand = {
    conv1: 2 * 2 * 8 * 16 * 16 * (3 * 3 * 3),
    conv2: 2 * 2 * 8 * 8 * 8 * (4 * 3 * 3),
    proj: 2 * 2 * 64 * 16 * 8,
    scores: 2 * 2 * 64 * 64 * 16,
    gemm: 2 * 128 * 32 * 16,
    attention: 4 * 2 * 64 * 5 * 16,
  };
  const common = Object.values(byHand).reduce((a, b) => a + b, 0);
  const thenBranch = 2 * 2 * 64 * 4 * 16;
  const elseBranch = 2 * 2 * 64 * 16 * 16 + 2 * 2 * 64 * 4 * 16;
  assert.ok(count !== undefined && other !== undefined);
  assert.deepEqual(count.unreadable, []);
  assert.equal(count.byOp['Conv']?.flops, byHand.conv1 + byHand.conv2);
  assert.equal(count.byOp['MultiHeadAttention']?.flops, byHand.attention);
  assert.equal(count.flops, common + thenBranch);
  assert.equal(other.flops, common + elseBranch);
  assert.ok((count.ignored['Sigmoid'] ?? 0) + (count.ignored['QuickGelu'] ?? 0) >= 1, JSON.stringify(count.ignored));
});
