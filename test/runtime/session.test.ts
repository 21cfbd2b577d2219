import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, Scope } from '../../src/onnx/graph-builder.js';
import * as ops from '../../src/onnx/ops.js';
import { modelToBytes } from '../../src/onnx/save.js';
import { availableProviders, Session } from '../../src/runtime/session.js';
import { float32 } from '../../src/tensor/tensor.js';

async function addOne(): Promise<Session> {
  const g = new GraphBuilder('g');
  const x = g.input('x', 'float32', ['N']);
  g.output(ops.add(new Scope(g, '/m'), x, ops.constFloat(g, 1)), 'y', 'float32', ['N']);
  return Session.create(modelToBytes(g), { name: 'add-one' });
}

test('cpu is always available', () => {
  assert.ok(availableProviders().includes('cpu'));
});

test('run maps inputs and outputs to our tensors', async () => {
  const session = await addOne();
  const y = (await session.run({ x: float32([2], [1, 2]) }))['y']!;
  assert.deepEqual(y.dims, [2]);
  assert.deepEqual(Array.from(y.data as Float32Array), [2, 3]);
  await session.dispose();
  await assert.rejects(session.run({ x: float32([1], [0]) }), /session for add-one was disposed/);
});

test('missing and unknown inputs are named', async () => {
  const session = await addOne();
  await assert.rejects(session.run({ z: float32([1], [0]) }), /add-one: inputs do not match the model \(missing: x; unknown: z\); expected x/);
  await session.dispose();
});

test('onnxruntime failures name the model and the input shapes', async () => {
  const session = await addOne();
  await assert.rejects(session.run({ x: float32([2, 2], [1, 2, 3, 4]) }), (err: Error) =>
    /onnxruntime failed running add-one with inputs \{x: float32\[2, 2\]\}/.test(err.message),
  );
  await session.dispose();
});

test('an unknown device is an invalid parameter; an absent provider is a clear runtime error', async () => {
  await assert.rejects(Session.create(new Uint8Array(), { device: 'tpu' as never }), /Expected one of cpu, cuda, webgpu for device but received 'tpu'/);
  if (!availableProviders().includes('cuda')) {
    await assert.rejects(
      Session.create(new Uint8Array(), { device: 'cuda' }),
      (err: Error) =>
        /execution provider 'cuda' is not available/.test(err.message) && /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/.test(err.message),
    );
  }
});

test('a corrupt model is reported with its name', async () => {
  await assert.rejects(Session.create(Uint8Array.of(1, 2, 3), { name: 'junk.onnx' }), /onnxruntime could not load model junk.onnx on cpu/);
});

test('webgpu without a GPU adapter fails with a hint to use the CPU', async (t) => {
  const g = new GraphBuilder('g');
  const x = g.input('x', 'float32', ['N']);
  g.output(ops.add(new Scope(g, '/m'), x, ops.constFloat(g, 1)), 'y', 'float32', ['N']);
  try {
    const session = await Session.create(modelToBytes(g), { device: 'webgpu', name: 'add-one' });
    await session.dispose();
    t.skip('this machine has a WebGPU adapter');
  } catch (err) {
    assert.match((err as Error).message, /onnxruntime could not load model add-one on webgpu: .*\n {2}hint: WebGPU needs a GPU adapter .* use --device cpu/s);
  }
});
