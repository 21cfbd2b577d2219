import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSamWeights } from '../../../src/models/sam/weights.js';
import { parseSamHQConfig, samHQVariantConfig, samHQWeightShapes, type SamHQConfig } from '../../../src/models/sam/config.js';
import { hfToOfficialNames, officialToHfNames } from '../../../src/models/sam/official-names.js';
import { SafetensorsFile } from '../../../src/io/safetensors.js';
import { TorchCheckpoint } from '../../../src/io/torch-checkpoint.js';
import { resolveSamModel } from '../../../src/pipeline/model-source.js';
import { float32, numel } from '../../../src/tensor/tensor.js';
import { GraphBuilder } from '../../../src/onnx/graph-builder.js';
import * as ops from '../../../src/onnx/ops.js';
import { WeightScope, WeightSet } from '../../../src/onnx/weight-scope.js';
import { ModelCache, weightsIdentity } from '../../../src/runtime/model-cache.js';
import { Session } from '../../../src/runtime/session.js';
import { fixturesDir } from '../../helpers/paths.js';
import { checkpointZip, stateDictPickle, type PickledTensor } from '../../helpers/torch-zip.js';

const modelDir = join(fixturesDir, 'golden', 'samhq-tiny', 'model');
const configPath = join(modelDir, 'config.json');
const pth = join(modelDir, 'sam_hq_tiny.pth');
const tinyJson = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, Record<string, unknown>>;
const tmp = mkdtempSync(join(tmpdir(), 'e4e-sam-weights-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

function dir(): string {
  const d = join(tmp, `${counter++}`);
  mkdirSync(d);
  return d;
}

function throwsCode(fn: () => unknown, code: string, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.equal((error as { code?: string }).code, code, String(error));
    const first = (error as Error).message.split('\n')[0]!;
    if (typeof message === 'string') assert.equal(first, message);
    else assert.match(first, message);
    return true;
  });
}

/** A .pth holding `shapes` (official names), every tensor a view of one shared float32 storage. */
function syntheticPth(path: string, shapes: ReadonlyMap<string, readonly number[]>): void {
  const largest = Math.max(...[...shapes.values()].map(numel));
  const tensors: PickledTensor[] = [...shapes].map(([name, size]) => ({ name, storage: 'FloatStorage', key: '0', numel: largest, size: [...size] }));
  writeFileSync(path, checkpointZip(stateDictPickle(tensors), { '0': new Uint8Array(largest * 4) }));
}

function officialShapes(config: SamHQConfig): Map<string, number[]> {
  const hf = samHQWeightShapes(config);
  const toOfficial = hfToOfficialNames([...hf.keys()], 'test');
  return new Map([...hf].map(([name, dims]) => [toOfficial.get(name)!, dims]));
}

test('a Hugging Face folder, its model.safetensors, and the official .pth give the same weights and config', () => {
  const fromDir = openSamWeights(modelDir);
  const fromFile = openSamWeights(join(modelDir, 'model.safetensors'));
  const fromPth = openSamWeights(pth);
  try {
    assert.equal(fromDir.format, 'huggingface');
    assert.equal(fromPth.format, 'pytorch');
    assert.deepEqual(fromDir.config, parseSamHQConfig(tinyJson, configPath));
    assert.deepEqual(fromPth.config, fromDir.config);
    assert.equal(fromFile.identity, fromDir.identity);
    assert.notEqual(fromPth.identity, fromDir.identity);
    assert.deepEqual(fromPth.source.names(), fromDir.source.names());
    assert.equal(fromDir.source.names().length, 227);
    for (const name of fromDir.source.names()) {
      const a = fromPth.source.read(name);
      const b = fromDir.source.read(name);
      assert.deepEqual(a.dims, b.dims, name);
      assert.ok(
        Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)),
        name,
      );
      const info = fromPth.source.info(name);
      assert.equal(info.name, name);
      assert.equal(info.file, pth, 'ONNX external data points into the .pth itself');
    }
    assert.match(fromPth.description, /^SAM-HQ official checkpoint .*sam_hq_tiny\.pth \(config .*config\.json\)$/);
  } finally {
    for (const w of [fromDir, fromFile, fromPth]) w.source.close();
  }
});

test('identity is content-based for a .pth: a byte-identical copy elsewhere has the same identity', () => {
  const d = dir();
  copyFileSync(pth, join(d, 'copy.pth'));
  copyFileSync(configPath, join(d, 'config.json'));
  const a = openSamWeights(pth);
  const b = openSamWeights(join(d, 'copy.pth'));
  assert.equal(a.identity, b.identity);
  a.source.close();
  b.source.close();
});

test('official <-> Hugging Face names are a bijection (golden names, every variant, deeper IoU heads)', () => {
  const ckpt = TorchCheckpoint.open(pth);
  const st = SafetensorsFile.open(join(modelDir, 'model.safetensors'));
  const toHf = officialToHfNames(ckpt.names(), pth);
  assert.deepEqual([...toHf.values()].sort(), st.names());
  const back = hfToOfficialNames(st.names(), 'model.safetensors');
  for (const [official, hf] of toHf) assert.equal(back.get(hf), official);
  assert.equal(toHf.get('mask_decoder.hf_mlp.layers.2.bias'), 'mask_decoder.hq_mask_mlp.proj_out.bias');
  assert.equal(toHf.get('mask_decoder.iou_prediction_head.layers.1.weight'), 'mask_decoder.iou_prediction_head.layers.0.weight');
  ckpt.close();
  st.close();
  const deep = parseSamHQConfig({ ...tinyJson, mask_decoder_config: { ...tinyJson['mask_decoder_config'], iou_head_depth: 5 } }, 'deep');
  for (const config of [samHQVariantConfig('vit_b'), samHQVariantConfig('vit_l'), samHQVariantConfig('vit_h'), deep]) {
    const hf = [...samHQWeightShapes(config).keys()];
    const official = hfToOfficialNames(hf, 'test');
    assert.equal(new Set(official.values()).size, hf.length, 'injective');
    const again = officialToHfNames([...official.values()], 'test');
    for (const name of hf) assert.equal(again.get(official.get(name)!), name);
  }
  const deepOfficial = hfToOfficialNames([...samHQWeightShapes(deep).keys()], 'test');
  assert.equal(deepOfficial.get('mask_decoder.iou_prediction_head.proj_out.weight'), 'mask_decoder.iou_prediction_head.layers.4.weight');
  assert.equal(deepOfficial.get('mask_decoder.iou_prediction_head.layers.2.weight'), 'mask_decoder.iou_prediction_head.layers.3.weight');
  throwsCode(
    () => officialToHfNames(['image_encoder.blocks.0.extra.weight'], 'x.pth'),
    'E_WEIGHT_MISSING',
    "x.pth: tensor 'image_encoder.blocks.0.extra.weight' is not a SAM-HQ weight (no official <-> Hugging Face name rule covers it)",
  );
});

test('a .pth without config.json: the official variant is told from its shapes, else an error says so', () => {
  const d = dir();
  const vitB = join(d, 'sam_hq_vit_b.pth');
  syntheticPth(vitB, officialShapes(samHQVariantConfig('vit_b')));
  const w = openSamWeights(vitB);
  assert.deepEqual(w.config, samHQVariantConfig('vit_b'));
  assert.equal(w.config.vision.numAttentionHeads, 12);
  assert.deepEqual(w.config.vision.globalAttnIndexes, [2, 5, 8, 11]);
  assert.match(w.description, /\(official vit_b config\)$/);
  w.source.close();
  const lone = join(dir(), 'sam_hq_tiny.pth');
  copyFileSync(pth, lone);
  throwsCode(
    () => openSamWeights(lone),
    'E_CONFIG',
    `${lone}: matches no official SAM-HQ variant (ViT-B 768 x 12, ViT-L 1024 x 24, ViT-H 1280 x 32): its image encoder is 32 wide and 4 blocks deep`,
  );
});

test('weights that do not fit the config: missing, wrong shape, extra tensors name the tensor', () => {
  const b = samHQVariantConfig('vit_b');
  let shapes = officialShapes(b);
  shapes.delete('mask_decoder.hf_token.weight');
  let path = join(dir(), 'sam_hq_vit_b.pth');
  syntheticPth(path, shapes);
  throwsCode(
    () => openSamWeights(path),
    'E_WEIGHT_MISSING',
    `${path} (with the official vit_b config): missing weight mask_decoder.hq_token.weight: expected [1, 256]`,
  );
  shapes = officialShapes(b);
  shapes.set('image_encoder.blocks.2.attn.rel_pos_h', [27, 64]);
  path = join(dir(), 'sam_hq_vit_b.pth');
  syntheticPth(path, shapes);
  throwsCode(
    () => openSamWeights(path),
    'E_WEIGHT_SHAPE',
    `${path} (with the official vit_b config): vision_encoder.layers.2.attn.rel_pos_h: expected [127, 64], got [27, 64]`,
  );
  shapes = officialShapes(b);
  shapes.set('image_encoder.blocks.12.norm1.weight', [768]);
  path = join(dir(), 'sam_hq_vit_b.pth');
  syntheticPth(path, shapes);
  throwsCode(() => openSamWeights(path), 'E_CONFIG', /matches no official SAM-HQ variant .*: its image encoder is 768 wide and 13 blocks deep$/);
  // The tiny .pth with a config.json that describes another model.
  const d = dir();
  copyFileSync(pth, join(d, 'model.pth'));
  const wrong = { ...tinyJson, mask_decoder_config: { ...tinyJson['mask_decoder_config'], mlp_dim: 96 } };
  writeFileSync(join(d, 'config.json'), JSON.stringify(wrong));
  throwsCode(
    () => openSamWeights(join(d, 'model.pth')),
    'E_WEIGHT_SHAPE',
    `${join(d, 'model.pth')} (with the config ${join(d, 'config.json')}): mask_decoder.transformer.layers.0.mlp.lin1.bias: expected [96], got [64]`,
  );
  const fewer = { ...tinyJson, vision_config: { ...tinyJson['vision_config'], num_hidden_layers: 3, global_attn_indexes: [1] } };
  writeFileSync(join(d, 'config.json'), JSON.stringify(fewer));
  throwsCode(
    () => openSamWeights(join(d, 'model.pth')),
    'E_WEIGHT_UNUSED',
    `${join(d, 'model.pth')} (with the config ${join(d, 'config.json')}): weight vision_encoder.layers.3.attn.proj.bias is not part of the SAM-HQ model the config describes`,
  );
});

test('config.json: transformers defaults, ill-typed and inconsistent keys, other model types', () => {
  assert.deepEqual(parseSamHQConfig({ model_type: 'sam_hq' }, 'c.json'), samHQVariantConfig('vit_b'));
  const tiny = parseSamHQConfig(tinyJson, configPath);
  assert.equal(tiny.promptEncoder.imageEmbeddingSize, 8);
  assert.equal(tiny.vision.mlpDim, 128);
  assert.ok(Object.isFrozen(tiny.vision));
  const withVision = (v: Record<string, unknown>): unknown => ({ ...tinyJson, vision_config: { ...tinyJson['vision_config'], ...v } });
  throwsCode(
    () => parseSamHQConfig(withVision({ num_hidden_layers: '4' }), 'c.json'),
    'E_CONFIG',
    `c.json vision_config: field 'num_hidden_layers' must be a positive integer, got "4"`,
  );
  throwsCode(
    () => parseSamHQConfig(withVision({ global_attn_indexes: [1, 9] }), 'c.json'),
    'E_CONFIG',
    'c.json: vision_config global_attn_indexes [1,9] name blocks beyond num_hidden_layers 4',
  );
  throwsCode(
    () => parseSamHQConfig(withVision({ hidden_act: 'relu' }), 'c.json'),
    'E_CONFIG',
    `c.json vision_config: field 'hidden_act' = "relu" is not supported (supported: "gelu")`,
  );
  throwsCode(
    () => parseSamHQConfig(withVision({ num_attention_heads: 3 }), 'c.json'),
    'E_CONFIG',
    'c.json: vision_config hidden_size 32 is not divisible by num_attention_heads 3',
  );
  throwsCode(
    () => parseSamHQConfig({ ...tinyJson, mask_decoder_config: { ...tinyJson['mask_decoder_config'], vit_dim: 64 } }, 'c.json'),
    'E_CONFIG',
    'c.json: mask_decoder_config vit_dim 64 differs from vision_config hidden_size 32',
  );
  throwsCode(
    () => parseSamHQConfig({ ...tinyJson, prompt_encoder_config: { ...tinyJson['prompt_encoder_config'], image_embedding_size: 9 } }, 'c.json'),
    'E_CONFIG',
    "c.json prompt_encoder_config: field 'image_embedding_size' = 9 disagrees with image_size // patch_size = 8",
  );
  throwsCode(
    () => parseSamHQConfig({ model_type: 'sam' }, 'c.json'),
    'E_CONFIG',
    'c.json: field \'model_type\' must be "sam_hq" (a transformers SamHQConfig), got "sam"',
  );
  throwsCode(() => parseSamHQConfig({ ...tinyJson, vision_config: 5 }, 'c.json'), 'E_CONFIG', 'c.json vision_config: config must be a JSON object, got 5');
  const bad = join(dir(), 'config.json');
  writeFileSync(bad, '{ not json');
  copyFileSync(join(modelDir, 'model.safetensors'), join(bad, '..', 'model.safetensors'));
  throwsCode(() => openSamWeights(join(bad, '..')), 'E_CONFIG', new RegExp(`^${bad.replace(/[.]/g, '\\.')}: invalid JSON`));
});

test('folder layouts: missing files are named', () => {
  const empty = dir();
  throwsCode(() => openSamWeights(empty), 'E_FILE', `${empty}: not a SAM-HQ model folder: model.safetensors and config.json missing`);
  const lone = dir();
  copyFileSync(join(modelDir, 'model.safetensors'), join(lone, 'model.safetensors'));
  throwsCode(() => openSamWeights(lone), 'E_FILE', `${lone}: not a SAM-HQ model folder: config.json missing`);
  throwsCode(
    () => openSamWeights(join(lone, 'model.safetensors')),
    'E_FILE',
    `${join(lone, 'model.safetensors')}: a SAM-HQ safetensors file needs its config.json next to it, and ${join(lone, 'config.json')} does not exist`,
  );
  throwsCode(() => openSamWeights(join(lone, 'nope.pth')), 'E_FILE', `${join(lone, 'nope.pth')}: SAM-HQ model not found`);
});

test('resolveSamModel: paths as given, hub ids from the Hugging Face cache, clear errors offline', () => {
  assert.equal(resolveSamModel(pth, {}).path, pth);
  const hub = dir();
  const snapshot = join(hub, 'models--syscv-community--sam-hq-vit-large', 'snapshots', 'abc123');
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(join(hub, 'models--syscv-community--sam-hq-vit-large', 'refs'));
  writeFileSync(join(hub, 'models--syscv-community--sam-hq-vit-large', 'refs', 'main'), 'abc123');
  const env = { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' };
  throwsCode(
    () => resolveSamModel(undefined, env),
    'E_MODEL_NOT_FOUND',
    `SAM-HQ model 'syscv-community/sam-hq-vit-large' is incomplete in the Hugging Face cache (${snapshot}): config.json and model.safetensors missing (HF_HUB_OFFLINE is set)`,
  );
  copyFileSync(configPath, join(snapshot, 'config.json'));
  copyFileSync(join(modelDir, 'model.safetensors'), join(snapshot, 'model.safetensors'));
  const found = resolveSamModel(undefined, env);
  assert.equal(found.path, snapshot);
  assert.equal(found.revision, 'abc123');
  const w = openSamWeights(found.path);
  assert.equal(w.config.vision.hiddenSize, 32);
  w.source.close();
  throwsCode(
    () => resolveSamModel('owner/absent', env),
    'E_MODEL_NOT_FOUND',
    /^SAM-HQ model 'owner\/absent' is not in the Hugging Face cache \(HF_HUB_OFFLINE is set\); looked at: /,
  );
});

test('a graph whose initializers point into the .pth runs from the graph cache (hard-linked checkpoint)', async () => {
  const sam = openSamWeights(pth);
  const reference = SafetensorsFile.open(join(modelDir, 'model.safetensors'));
  try {
    const cache = new ModelCache(join(dir(), 'cache'));
    const entry = cache.obtain({
      name: 'hq_token_plus_x',
      config: { identity: sam.identity },
      weightFiles: [pth],
      build: () => {
        const g = new GraphBuilder('hq_token_plus_x');
        const weights = WeightSet.fromSource(sam.source);
        const scope = new WeightScope(g, '/m', weights, 'mask_decoder.');
        const x = g.input('x', 'float32', [1, 32]);
        const y = ops.add(scope, x, ops.add(scope.sub('b'), scope.weight('hq_token.weight', [1, 32]), scope.weight('iou_token.weight', [1, 32])));
        g.output(y, 'y', 'float32', [1, 32]);
        return { graph: g };
      },
    });
    assert.ok(
      readdirSync(join(entry.modelPath, '..')).some((n) => n.endsWith('sam_hq_tiny.pth')),
      'the .pth is linked into the entry',
    );
    // The cache's file identity of a .pth digests its tail (the zip central directory with every CRC-32).
    assert.match(String(weightsIdentity(pth)['header']), /^[0-9a-f]{64}$/);
    const session = await Session.create(entry.modelPath);
    const y = (await session.run({ x: float32([1, 32], new Array<number>(32).fill(1)) }))['y']!;
    await session.dispose();
    const hq = reference.read('mask_decoder.hq_token.weight').data as Float32Array;
    const iou = reference.read('mask_decoder.iou_token.weight').data as Float32Array;
    assert.deepEqual(
      Array.from(y.data as Float32Array),
      Array.from(hq, (v, i) => Math.fround(Math.fround(v + iou[i]!) + 1)),
    );
  } finally {
    sam.source.close();
    reference.close();
  }
});
