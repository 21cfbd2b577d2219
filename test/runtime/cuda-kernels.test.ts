/**
 * Every (domain, op, input dtype) our graphs contain has a kernel in ONNX Runtime's CUDA execution provider.
 * No machine here has CUDA, so the graphs are checked against onnxruntime's kernel table (docs/OperatorKernels.md,
 * test/fixtures/ort-1.30/cuda-kernels.json; see test/helpers/kernel-coverage.ts for the rules). The graphs are built
 * in memory on the tiny models; no session is created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadClipTextConfig } from '../../src/config/clip-config.js';
import { loadUNetConfig, parseUNetConfig, type UNetConfig } from '../../src/config/unet-config.js';
import { loadVaeConfig } from '../../src/config/vae-config.js';
import { openTensorSource } from '../../src/io/safetensors.js';
import { e4eUNetVariant } from '../../src/methods/eye-for-an-eye/index.js';
import { buildClipTextModel } from '../../src/models/clip/clip-text-model.js';
import type { AttentionSite } from '../../src/models/unet/attention-processor.js';
import { attentionMapProcessor } from '../../src/models/unet/explicit-attention.js';
import { officialFreeU } from '../../src/models/unet/freeu.js';
import { buildUNet } from '../../src/models/unet/unet-2d-condition.js';
import { buildVaeDecoder, buildVaeEncoder } from '../../src/models/vae/autoencoder-kl.js';
import { ONNX_OPSET } from '../../src/onnx/format.js';
import { GraphBuilder, Scope } from '../../src/onnx/graph-builder.js';
import { argMax, cast, ifElse, shape } from '../../src/onnx/ops.js';
import { WeightSet } from '../../src/onnx/weight-scope.js';
import type { ModelProtoJs } from '../../src/onnx/proto.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import {
  findKernel,
  kernelCoverage,
  loadCudaKernelTable,
  loadOnnxSchemaVersions,
  shapeOnlyModel,
  typedNodes,
  type TripleUse,
} from '../helpers/kernel-coverage.js';
import { sd1TinyModelDir } from '../helpers/paths.js';
import { SD2_TINY, unetWeightShapes } from '../models/unet/sd2-tiny.js';

const table = loadCudaKernelTable();
const schemas = loadOnnxSchemaVersions();

const weightsOf = (component: string, file: string): WeightSet => WeightSet.fromSource(openTensorSource(join(sd1TinyModelDir, component, file)));
const unetWeights = (): WeightSet => weightsOf('unet', 'diffusion_pytorch_model.safetensors');
const vaeWeights = (): WeightSet => weightsOf('vae', 'diffusion_pytorch_model.safetensors');

/** Zero weights of the SD-2-shaped tiny UNet in a given float dtype (float16: what most SD checkpoints ship). */
function sd2Weights(dtype: 'float32' | 'float16'): WeightSet {
  const tensors: Record<string, Tensor> = {};
  for (const [name, dims] of unetWeightShapes(SD2_TINY)) tensors[name] = tensor(dtype, dims);
  return WeightSet.fromTensors(tensors, `sd2-tiny unet (${dtype} zeros)`);
}

/** The graphs the pipeline runs, on the tiny models. */
function ourModels(): { label: string; model: ModelProtoJs }[] {
  const unetConfig: UNetConfig = loadUNetConfig(join(sd1TinyModelDir, 'unet', 'config.json'));
  const vaeConfig = loadVaeConfig(join(sd1TinyModelDir, 'vae', 'config.json'));
  const textConfig = loadClipTextConfig(join(sd1TinyModelDir, 'text_encoder', 'config.json'));
  const e4e = e4eUNetVariant(unetConfig);
  const maps = { choose: (site: AttentionSite) => attentionMapProcessor({ record: 'record_maps', output: `maps.${site.modulePath}` }) };
  const sd2Config = parseUNetConfig(SD2_TINY, 'sd2-tiny/unet/config.json');
  const builders: [string, () => GraphBuilder][] = [
    ['text_encoder', () => buildClipTextModel(weightsOf('text_encoder', 'model.safetensors'), textConfig)],
    ['vae_encoder', () => buildVaeEncoder(vaeWeights(), vaeConfig)],
    ['vae_decoder', () => buildVaeDecoder(vaeWeights(), vaeConfig)],
    ['unet', () => buildUNet(unetWeights(), unetConfig, { freeu: null }).graph],
    ['unet_freeu', () => buildUNet(unetWeights(), unetConfig, { freeu: officialFreeU(unetConfig) }).graph],
    ['unet_e4e', () => buildUNet(unetWeights(), unetConfig, { freeu: e4e.freeu ? officialFreeU(unetConfig) : null, processors: e4e.processors?.plan }).graph],
    ['unet_explicit_attention', () => buildUNet(unetWeights(), unetConfig, { freeu: null, processors: maps }).graph],
    ['unet_sd2_tiny', () => buildUNet(sd2Weights('float32'), sd2Config, { freeu: officialFreeU(sd2Config) }).graph],
    ['unet_sd2_tiny_fp16_weights', () => buildUNet(sd2Weights('float16'), sd2Config, { freeu: null }).graph],
  ];
  return builders.map(([label, build]) => ({ label, model: shapeOnlyModel(build()) }));
}

/**
 * Triples that the stored kernel table has no CUDA kernel for, each with what is known. The test fails if another
 * triple is missing, and also if one of these is no longer used or no longer missing (then drop it here).
 */
// Known gaps would be listed here with the reason; ScatterND (opset 16, no CUDA kernel at "13+") was the one, and the
// Eye-for-an-eye processor now writes rows with Where instead.
const KNOWN_GAPS: Readonly<Record<string, string>> = {};

/**
 * What our graphs use: (domain, op, dtype of the input that selects the kernel). A new op or dtype in a graph shows
 * up here first; check it against the table (the test below does) and add it.
 */
const EXPECTED_TRIPLES: readonly string[] = [
  'ai.onnx Abs float',
  'ai.onnx Add float',
  'ai.onnx ArgMax float',
  'ai.onnx Cast bool',
  'ai.onnx Cast float16',
  'ai.onnx Cast int64',
  'ai.onnx Concat float',
  'ai.onnx Concat int64',
  'ai.onnx ConstantOfShape int64',
  'ai.onnx Conv float',
  'ai.onnx Cos float',
  'ai.onnx Div float',
  'ai.onnx Equal int64',
  'ai.onnx Erf float',
  'ai.onnx Gather float',
  'ai.onnx Gather int64',
  'ai.onnx Greater float',
  'ai.onnx Greater int64',
  'ai.onnx Identity bool',
  'ai.onnx Identity float',
  'ai.onnx Identity int64',
  'ai.onnx If bool',
  'ai.onnx InstanceNormalization float',
  'ai.onnx LayerNormalization float',
  'ai.onnx Less int64',
  'ai.onnx MatMul float',
  'ai.onnx Max float',
  'ai.onnx Max int64',
  'ai.onnx Mul float',
  'ai.onnx Mul int64',
  'ai.onnx Not bool',
  'ai.onnx Range int64',
  'ai.onnx ReduceMax float',
  'ai.onnx ReduceMean float',
  'ai.onnx ReduceSum float',
  'ai.onnx Reshape bool',
  'ai.onnx Reshape float',
  'ai.onnx Reshape int64',
  'ai.onnx Resize float',
  'ai.onnx Shape float',
  'ai.onnx Shape int64',
  'ai.onnx Sigmoid float',
  'ai.onnx Sin float',
  'ai.onnx Size int64',
  'ai.onnx Slice float',
  'ai.onnx Slice int64',
  'ai.onnx Softmax float',
  'ai.onnx Split float',
  'ai.onnx Sqrt float',
  'ai.onnx Squeeze int64',
  'ai.onnx Sub float',
  'ai.onnx Transpose float',
  'ai.onnx Unsqueeze bool',
  'ai.onnx Unsqueeze float',
  'ai.onnx Unsqueeze int64',
  'ai.onnx Where float',
  'ai.onnx Where int64',
  'com.microsoft MultiHeadAttention float',
];

function describe(use: TripleUse): string {
  const v = use.verdict;
  const status = v.ok ? `kernel ${v.kernel}${v.via === 'amendment' ? ' (amendment)' : ''}` : `MISSING: ${v.reason}`;
  return `${use.triple.padEnd(40)} ${String(use.nodes).padStart(5)} nodes  ${status}  [${use.graphs.join(', ')}]`;
}

test('every (domain, op, dtype) of our graphs has a CUDA kernel in onnxruntime', (t) => {
  const models = ourModels();
  assert.ok(ONNX_OPSET <= schemas.opsets[1], `our opset ${ONNX_OPSET} is beyond the ONNX schema table`);
  const uses = [...kernelCoverage(table, schemas, models).values()].sort((a, b) => a.triple.localeCompare(b.triple));
  t.diagnostic(`kernel table: ${table.source.repository} ${table.source.path} @ ${table.source.commit}`);
  for (const use of uses) t.diagnostic(describe(use));

  const missing = uses.filter((u) => !u.verdict.ok && KNOWN_GAPS[u.triple] === undefined);
  assert.deepEqual(
    missing.map((u) => `${u.triple}: ${u.verdict.ok ? '' : u.verdict.reason} (e.g. ${u.example.graph}: ${u.example.path})`),
    [],
    'triples without a CUDA kernel',
  );
  for (const [triple, why] of Object.entries(KNOWN_GAPS)) {
    const use = uses.find((u) => u.triple === triple);
    assert.ok(use !== undefined, `known gap ${triple} is no longer used: drop it from KNOWN_GAPS`);
    assert.ok(!use.verdict.ok, `known gap ${triple} now has a kernel (${use.verdict.ok ? use.verdict.kernel : ''}): drop it from KNOWN_GAPS`);
    t.diagnostic(`KNOWN GAP ${triple} (e.g. ${use.example.graph}: ${use.example.path}): ${why}`);
  }
  assert.deepEqual(
    uses.map((u) => u.triple),
    EXPECTED_TRIPLES,
    'the triples our graphs use changed: review them and update EXPECTED_TRIPLES',
  );
});

test('the checker reports a made-up triple: ArgMax on bool, in an If branch, at our opset', () => {
  // x float [2, 3] -> If(cond): then ArgMax(Cast(x, bool)), else ArgMax(x); plus Shape (int64) for the propagation.
  const g = new GraphBuilder('made_up');
  const s = new Scope(g, '/made_up');
  const x = g.input('x', 'float32', [2, 3]);
  const cond = g.input('cond', 'bool', []);
  const thenG = g.subgraph('/made_up/then');
  const ts = new Scope(thenG, '/made_up/then');
  thenG.output(argMax(ts, cast(ts, x, 'bool'), 1, false), 'then_index', 'int64', [2]);
  const elseG = g.subgraph('/made_up/else');
  const es = new Scope(elseG, '/made_up/else');
  elseG.output(argMax(es, x, 1, false), 'else_index', 'int64', [2]);
  const [index] = ifElse(s, cond, thenG, elseG, 1, { name: 'If_choice' });
  g.output(index!, 'index', 'int64', [2]);
  g.output(shape(s, x), 'shape', 'int64', [2]);
  const model = shapeOnlyModel(g);

  const nodes = typedNodes(model, 'made_up').map((n) => `${n.path} ${n.opType} (${n.inputs.join(', ')}) -> (${n.outputs.join(', ')})`);
  assert.deepEqual(nodes.sort(), [
    '/made_up/If_choice If (bool) -> (int64)',
    '/made_up/If_choice [else_branch] /made_up/else/ArgMax ArgMax (float) -> (int64)',
    '/made_up/If_choice [else_branch] /outputs/else_index Identity (int64) -> (int64)',
    '/made_up/If_choice [then_branch] /made_up/then/ArgMax ArgMax (bool) -> (int64)',
    '/made_up/If_choice [then_branch] /made_up/then/Cast Cast (float) -> (bool)',
    '/made_up/If_choice [then_branch] /outputs/then_index Identity (int64) -> (int64)',
    '/made_up/Shape Shape (float) -> (int64)',
    '/outputs/index Identity (int64) -> (int64)',
    '/outputs/shape Identity (int64) -> (int64)',
  ]);

  const uses = kernelCoverage(table, schemas, [{ label: 'made_up', model }]);
  const missing = [...uses.values()].filter((u) => !u.verdict.ok);
  assert.deepEqual(
    missing.map((u) => [u.triple, u.example.graph, u.example.path]),
    [['ai.onnx ArgMax bool', 'made_up', '/made_up/If_choice [then_branch] /made_up/then/ArgMax']],
  );
  const verdict = missing[0]!.verdict;
  assert.ok(!verdict.ok && /input 0 is bool/.test(verdict.reason), JSON.stringify(verdict));
  // ArgMax on float is served (by the amendment from the later upstream change), the rest by the table.
  assert.deepEqual(uses.get('ai.onnx ArgMax float')?.verdict, { ok: true, schemaVersion: 13, kernel: '13+', via: 'amendment' });
});

test('the kernel rules: op without a CUDA kernel, open-ended kernels, bounded ranges, attribute conditions', () => {
  const query = (opType: string, opset: number, inputs: (string | null)[], outputs: string[], domain = '') => ({ domain, opType, opset, inputs, outputs });
  // An op the CUDA EP does not implement at all (CPU only).
  const det = findKernel(table, schemas, query('Det', 17, ['float'], ['float']));
  assert.ok(!det.ok && /no kernel for ai\.onnx Det/.test(det.reason), JSON.stringify(det));
  // An op that has no schema yet at our opset.
  const groupNorm = findKernel(table, schemas, query('GroupNormalization', 17, ['float', 'float', 'float'], ['float']));
  assert.ok(!groupNorm.ok, JSON.stringify(groupNorm));
  // Add: "14+" serves schema 14, the version at opset 17.
  assert.deepEqual(findKernel(table, schemas, query('Add', 17, ['float', 'float'], ['float'])), {
    ok: true,
    schemaVersion: 14,
    kernel: '14+',
    via: 'table',
  });
  // Add on bool: the op exists, the type does not.
  const addBool = findKernel(table, schemas, query('Add', 17, ['bool', 'bool'], ['bool']));
  assert.ok(!addBool.ok && /input 0 is bool/.test(addBool.reason), JSON.stringify(addBool));
  // Identity [14, 18] is bounded: it serves schema 16 (opset 17).
  assert.equal(findKernel(table, schemas, query('Identity', 17, ['int64'], ['int64'])).ok, true);
  // ScatterND "13+" is open-ended: it serves opset 13-15 (schema 13) but not opset 17 (schema 16).
  const scatter = (opset: number) => findKernel(table, schemas, query('ScatterND', opset, ['float', 'int64', 'float'], ['float']));
  assert.equal(scatter(13).ok, true);
  const scatter17 = scatter(17);
  assert.ok(!scatter17.ok && /schema version 16/.test(scatter17.reason), JSON.stringify(scatter17));
  // A fixed-type position: Reshape's shape must be int64.
  const reshape = findKernel(table, schemas, query('Reshape', 17, ['float', 'int32'], ['float']));
  assert.ok(!reshape.ok && /input 1 is int32/.test(reshape.reason), JSON.stringify(reshape));
  // The ArgMax amendment holds only for select_last_index = 0.
  const argMaxWith = (selectLast: number) =>
    findKernel(table, schemas, { ...query('ArgMax', 17, ['float'], ['int64']), attributes: [{ name: 'select_last_index', type: 2, i: selectLast }] });
  assert.equal(argMaxWith(0).ok, true);
  assert.equal(argMaxWith(1).ok, false);
  // Contrib ops: MultiHeadAttention float in com.microsoft (version 1).
  assert.equal(findKernel(table, schemas, query('MultiHeadAttention', 1, ['float', 'float', 'float'], ['float'], 'com.microsoft')).ok, true);
  assert.equal(findKernel(table, schemas, query('MultiHeadAttention', 1, ['double', 'double', 'double'], ['double'], 'com.microsoft')).ok, false);
});
