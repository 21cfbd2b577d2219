/**
 * The released models' geometry (1024 input, patch 16 -> 64x64 grid, window 14 -> padded to 70, low-res masks
 * 256x256) on a thin random model: both graphs build from weights named and shaped as transformers' SamHQModel
 * (bench/sam-weights.ts, checked both ways by the builders) and run at those sizes; ViT-L's own names and shapes build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { samWeightSpecs, SAM_HQ_VIT_L } from '../../../bench/sam-weights.js';
import type { SamModelShapes } from '../../../src/models/sam/sam-configs.js';
import { buildSamDecoder } from '../../../src/models/sam/sam-decoder.js';
import { buildSamVisionEncoder } from '../../../src/models/sam/vision-encoder.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { Session } from '../../../src/runtime/session.js';
import type { TensorSource } from '../../../src/io/safetensors.js';
import type { Tensor } from '../../../src/tensor/tensor.js';

const THIN: SamModelShapes = {
  vision: {
    ...SAM_HQ_VIT_L.vision,
    hiddenSize: 32,
    numHiddenLayers: 3,
    numAttentionHeads: 2,
    mlpDim: 64,
    outputChannels: 32,
    globalAttnIndexes: [1],
    numPosFeats: 16,
  },
  prompt: { ...SAM_HQ_VIT_L.prompt, hiddenSize: 32, maskInputChannels: 8 },
  decoder: { ...SAM_HQ_VIT_L.decoder, hiddenSize: 32, mlpDim: 64, numAttentionHeads: 2, iouHeadHiddenDim: 32, vitDim: 32 },
};

function randomWeights(shapes: SamModelShapes): Record<string, Tensor> {
  let s = 12345;
  const out: Record<string, Tensor> = {};
  for (const spec of samWeightSpecs(shapes)) {
    const n = spec.dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = spec.kind === 'norm-weight' ? 1 : ((s / 2 ** 32) * 2 - 1) * 0.2;
    }
    out[spec.name] = { dtype: 'float32', dims: spec.dims, data };
  }
  return out;
}

const finite = (t: Tensor): boolean => (t.data as Float32Array).every(Number.isFinite);

test('1024 input, 64x64 grid, window 14 (padded to 70), 256x256 low-res masks: both graphs run', async () => {
  const tensors = randomWeights(THIN);
  const encoder = await Session.create(modelToBytes(buildSamVisionEncoder(WeightSet.fromTensors(tensors, 'thin'), THIN.vision)));
  const decoder = await Session.create(modelToBytes(buildSamDecoder(WeightSet.fromTensors(tensors, 'thin'), THIN)));
  const pixels = new Float32Array(3 * 1024 * 1024).map((_, i) => Math.sin(i * 0.001));
  const features = await encoder.run({ pixel_values: { dtype: 'float32', dims: [1, 3, 1024, 1024], data: pixels } });
  assert.deepEqual(features['image_embeddings']!.dims, [1, 32, 64, 64]);
  assert.deepEqual(features['interm_embeddings']!.dims, [1, 64, 64, 32]);
  assert.ok(finite(features['image_embeddings']!) && finite(features['interm_embeddings']!));
  const out = await decoder.run({
    image_embeddings: features['image_embeddings']!,
    interm_embeddings: features['interm_embeddings']!,
    point_coords: { dtype: 'float32', dims: [1, 3, 2], data: Float32Array.of(500, 400, 100, 200, 900, 700) },
    point_labels: { dtype: 'int32', dims: [1, 3], data: Int32Array.of(1, 2, 3) },
    mask_input: { dtype: 'float32', dims: [1, 1, 256, 256], data: new Float32Array(256 * 256) },
    has_mask_input: { dtype: 'bool', dims: [1], data: Uint8Array.of(0) },
    multimask_output: { dtype: 'bool', dims: [1], data: Uint8Array.of(1) },
    hq_token_only: { dtype: 'bool', dims: [1], data: Uint8Array.of(1) },
    input_size: { dtype: 'int64', dims: [2], data: BigInt64Array.of(768n, 1024n) },
    original_size: { dtype: 'int64', dims: [2], data: BigInt64Array.of(480n, 640n) },
  });
  assert.deepEqual(out['decoder_masks_all']!.dims, [1, 5, 256, 256]);
  assert.deepEqual(out['decoder_iou_all']!.dims, [1, 4]);
  assert.deepEqual(out['upscaled_logits']!.dims, [1, 1, 480, 640]);
  assert.ok(finite(out['upscaled_logits']!));
  // hq_token_only: the low-res logits are the HQ token's.
  const all = out['decoder_masks_all']!.data as Float32Array;
  assert.deepEqual(out['low_res_logits']!.data, all.subarray(4 * 256 * 256));
  await encoder.dispose();
  await decoder.dispose();
});

test('ViT-L: weights named and shaped as SamHQModel build both graphs (checked both ways)', () => {
  // Only names and shapes matter here: a source whose tensors point into a file never read (no session is made).
  const specs = new Map(samWeightSpecs(SAM_HQ_VIT_L).map((s) => [s.name, s]));
  const source: TensorSource = {
    description: 'vit-l (names and shapes only)',
    names: () => [...specs.keys()],
    has: (name) => specs.has(name),
    info: (name) => {
      const s = specs.get(name)!;
      return { name, dtype: 'float32', dims: s.dims, byteOffset: 0, byteLength: 4 * s.dims.reduce((a, b) => a * b, 1), file: '/nonexistent' };
    },
    read: () => {
      throw new Error('not read');
    },
    close: () => {},
  };
  const weights = (): WeightSet => WeightSet.fromSource(source);
  assert.ok(buildSamVisionEncoder(weights(), SAM_HQ_VIT_L.vision).nodeCount > 0);
  assert.ok(buildSamDecoder(weights(), SAM_HQ_VIT_L).nodeCount > 0);
});
