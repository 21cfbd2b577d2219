#!/usr/bin/env node
/**
 * WebGPU probe of scripts/device-check.sh: does onnxruntime-node list 'webgpu', can a WebGPU session be created
 * (the adapter request happens there), and is the adapter a real GPU? Runs a chain of K float32 MatMuls
 * (Y = X W ... W, N x N) on WebGPU and on the CPU, prints the WebGPU throughput (a software Vulkan driver such as
 * lavapipe or SwiftShader gives tens of GFLOP/s, a GPU thousands) and the largest difference between the two.
 *
 * The ONNX model is encoded here by hand (a few protobuf fields), so the probe depends on nothing in src/.
 *
 * Usage: node scripts/device-probe.mjs [--n N] [--chain K] [--json FILE]
 * Exit codes: 0 WebGPU works; 3 onnxruntime-node has no 'webgpu' backend; 4 no session (no adapter);
 * 5 the session ran but failed; 6 the WebGPU result differs from the CPU's.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { n: { type: 'string' }, chain: { type: 'string' }, json: { type: 'string' } } });
const N = Number(values.n ?? 2048);
const K = Number(values.chain ?? 8);
const result = { n: N, chain: K, gflop_per_run: (2 * N * N * N * K) / 1e9 };

function finish(code) {
  result.exit = code;
  const line = JSON.stringify(result);
  console.log(`probe: ${line}`);
  if (values.json !== undefined) writeFileSync(values.json, `${line}\n`);
  process.exit(code);
}

// ------------------------------------------------------------------ minimal protobuf writer (ONNX ModelProto)
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const vField = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const bField = (field, bytes) => Buffer.concat([key(field, 2), varint(bytes.length), bytes]);
const sField = (field, s) => bField(field, Buffer.from(s, 'utf8'));

const FLOAT = 1;
function valueInfo(name, dims) {
  const shape = Buffer.concat(dims.map((d) => bField(1, vField(1, d)))); // TensorShapeProto.dim { dim_value }
  const tensorType = Buffer.concat([vField(1, FLOAT), bField(2, shape)]); // TypeProto.Tensor { elem_type, shape }
  return Buffer.concat([sField(1, name), bField(2, bField(1, tensorType))]); // ValueInfoProto { name, type { tensor_type } }
}
function node(op, inputs, outputs, name) {
  return Buffer.concat([...inputs.map((i) => sField(1, i)), ...outputs.map((o) => sField(2, o)), sField(3, name), sField(4, op)]);
}
function initializer(name, dims, data) {
  return Buffer.concat([...dims.map((d) => vField(1, d)), vField(2, FLOAT), sField(8, name), bField(9, Buffer.from(data.buffer, data.byteOffset, data.byteLength))]);
}

let s = 0x9e3779b9;
const uniform = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 4294967296;
};
// W with entries in +-sqrt(3/N): variance 1/N, so the chain keeps X's scale.
const w = new Float32Array(N * N);
const a = Math.sqrt(3 / N);
for (let i = 0; i < w.length; i++) w[i] = (2 * uniform() - 1) * a;
const x = new Float32Array(N * N);
for (let i = 0; i < x.length; i++) x[i] = 2 * uniform() - 1;

const nodes = [];
for (let k = 0; k < K; k++) nodes.push(bField(1, node('MatMul', [k === 0 ? 'X' : `Y${k}`, 'W'], [k === K - 1 ? 'Y' : `Y${k + 1}`], `mm${k}`)));
const graph = Buffer.concat([...nodes, sField(2, 'probe'), bField(5, initializer('W', [N, N], w)), bField(11, valueInfo('X', [N, N])), bField(12, valueInfo('Y', [N, N]))]);
const model = Buffer.concat([vField(1, 8), sField(2, 'eye4eye-device-probe'), bField(7, graph), bField(8, Buffer.concat([sField(1, ''), vField(2, 17)]))]);

// ------------------------------------------------------------------ onnxruntime
const require = createRequire(import.meta.url);
let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  result.error = `cannot load onnxruntime-node: ${e.message}`;
  finish(3);
}
result.onnxruntime = ort.env.versions?.node ?? ort.env.versions?.common;
result.backends = ort.listSupportedBackends().map((b) => b.name);
if (!result.backends.includes('webgpu')) {
  result.error = "onnxruntime-node does not list 'webgpu'";
  finish(3);
}

const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
async function timed(session, runs) {
  const feeds = { X: new ort.Tensor('float32', x, [N, N]) };
  let t = performance.now();
  let out = await session.run(feeds);
  const first = performance.now() - t;
  const ms = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    out = await session.run(feeds);
    ms.push(performance.now() - t);
  }
  return { first_ms: first, ms: median(ms), y: out.Y.data };
}

let gpu;
let t0 = performance.now();
try {
  gpu = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 3 });
} catch (e) {
  result.error = `WebGPU session (adapter) failed: ${e.message.trim()}`;
  finish(4);
}
result.webgpu_session_ms = Math.round(performance.now() - t0);
let g;
try {
  g = await timed(gpu, 5);
} catch (e) {
  result.error = `WebGPU run failed: ${e.message}`;
  finish(5);
}
result.webgpu_first_ms = Math.round(g.first_ms);
result.webgpu_ms = Number(g.ms.toFixed(2));
result.webgpu_gflops = Number((result.gflop_per_run / (g.ms / 1000)).toFixed(1));

t0 = performance.now();
const cpu = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
const c = await timed(cpu, 1);
result.cpu_ms = Number(c.ms.toFixed(2));
result.cpu_gflops = Number((result.gflop_per_run / (c.ms / 1000)).toFixed(1));
let maxAbs = 0;
let maxRef = 0;
for (let i = 0; i < c.y.length; i++) {
  maxAbs = Math.max(maxAbs, Math.abs(c.y[i] - g.y[i]));
  maxRef = Math.max(maxRef, Math.abs(c.y[i]));
}
result.max_abs_diff = maxAbs;
result.max_abs_ref = maxRef;
// A real GPU: well above what a software Vulkan driver (lavapipe, SwiftShader: tens to a few hundred GFLOP/s) reaches.
result.looks_like_gpu = result.webgpu_gflops > 1000 || result.webgpu_gflops > 5 * result.cpu_gflops;
await gpu.release();
await cpu.release();
finish(Number.isFinite(maxAbs) && maxAbs <= 1e-3 * Math.max(1, maxRef) ? 0 : 6);
