/** Shared helpers of the UNet tests: the sd1-tiny UNet, graph runs, and a seeded source of test weights. */
import { join } from 'node:path';
import { loadUNetConfig, type UNetConfig } from '../../../src/config/unet-config.js';
import { openTensorSource, type TensorSource } from '../../../src/io/safetensors.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import type { GraphBuilder } from '../../../src/onnx/graph-builder.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { Session, type Feeds } from '../../../src/runtime/session.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';

const unetDir = join(sd1TinyModelDir, 'unet');
let source: TensorSource | undefined;

export function sd1TinyUNetConfig(): UNetConfig {
  return loadUNetConfig(join(unetDir, 'config.json'));
}

/** A fresh WeightSet (each build records its own use) over the sd1-tiny UNet weights. */
export function sd1TinyUNetWeights(): WeightSet {
  source ??= openTensorSource(join(unetDir, 'diffusion_pytorch_model.safetensors'));
  return WeightSet.fromSource(source);
}

/** Run a built graph (or a built UNet's graph) once on CPU and return its main output (out_sample, else its first). */
export async function runGraph(built: GraphBuilder | { graph: GraphBuilder }, feeds: Feeds): Promise<Tensor> {
  const builder = 'graph' in built ? built.graph : built;
  const session = await Session.create(modelToBytes(builder), { name: builder.name });
  try {
    const outputs = await session.run(feeds);
    const first = outputs['out_sample'] ?? Object.values(outputs)[0];
    if (first === undefined) throw new Error(`${builder.name}: no output`);
    return first;
  } finally {
    await session.dispose();
  }
}

/** mulberry32: a small seeded generator for test data (randomness is an input, never Math.random). */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-scale, scale). */
export function randomFloats(next: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * next() - 1) * scale);
}
