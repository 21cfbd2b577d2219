import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadClipTextConfig, type ClipTextConfig } from '../../../src/config/clip-config.js';
import { loadTokenizerConfig } from '../../../src/config/tokenizer-config.js';
import { WeightShapeError, WeightUnusedError } from '../../../src/errors.js';
import { openTensorSource, type TensorSource } from '../../../src/io/safetensors.js';
import { buildClipTextModel, CLIP_TEXT_MODEL_IGNORED_WEIGHTS } from '../../../src/models/clip/clip-text-model.js';
import { ClipTokenizer } from '../../../src/models/clip/clip-tokenizer.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { WeightSet } from '../../../src/onnx/weight-scope.js';
import { Session } from '../../../src/runtime/session.js';
import { tensor, type Tensor } from '../../../src/tensor/tensor.js';
import { compareTensors, expectClose, formatCompare } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { sd1TinyModelDir } from '../../helpers/paths.js';

const textEncoderDir = join(sd1TinyModelDir, 'text_encoder');
const weightsPath = join(textEncoderDir, 'model.safetensors');
const POSITION_IDS = 'text_model.embeddings.position_ids';

async function runTextModel(weights: WeightSet, config: ClipTextConfig, inputIds: Tensor): Promise<Tensor> {
  const session = await Session.create(modelToBytes(buildClipTextModel(weights, config)), { name: 'clip_text_model' });
  try {
    const out = await session.run({ input_ids: inputIds });
    const last = out['last_hidden_state'];
    assert.ok(last !== undefined, 'no last_hidden_state output');
    return last;
  } finally {
    await session.dispose();
  }
}

/** Every tensor of the checkpoint in memory, with `changes` applied (a tensor set to undefined is dropped). */
function tensorsWith(source: TensorSource, changes: Record<string, Tensor | undefined>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const name of source.names()) out[name] = source.read(name);
  for (const [name, t] of Object.entries(changes)) {
    if (t === undefined) delete out[name];
    else out[name] = t;
  }
  return out;
}

/** The first `t` columns of an int64 [B, T] tensor. */
function firstColumns(ids: Tensor, t: number): Tensor {
  const [b, full] = ids.dims as [number, number];
  const data = new BigInt64Array(b * t);
  for (let i = 0; i < b; i++) data.set((ids.data as BigInt64Array).subarray(i * full, i * full + t), i * t);
  return tensor('int64', [b, t], data);
}

/** The first `t` tokens of a float32 [B, T, C] tensor. */
function firstTokens(x: Tensor, t: number): Tensor {
  const [b, full, c] = x.dims as [number, number, number];
  const data = new Float32Array(b * t * c);
  for (let i = 0; i < b; i++) data.set((x.data as Float32Array).subarray(i * full * c, (i * full + t) * c), i * t * c);
  return tensor('float32', [b, t, c], data);
}

describe('buildClipTextModel (sd1-tiny golden)', () => {
  const golden = sd1Tiny();
  const config = loadClipTextConfig(join(textEncoderDir, 'config.json'));
  let source: TensorSource;
  let inputIds: Tensor;
  let lastHiddenState: Tensor;

  before(async () => {
    source = openTensorSource(weightsPath);
    const prompts = golden.meta['prompts'] as string[];
    const tok = loadTokenizerConfig(join(sd1TinyModelDir, 'tokenizer'));
    const tokenizer = ClipTokenizer.fromFiles(tok.vocabPath, tok.mergesPath, tok);
    const encoded = tokenizer.encodeBatch(prompts);
    inputIds = tensor('int64', encoded.dims, encoded.ids);
    lastHiddenState = await runTextModel(WeightSet.fromSource(source), config, inputIds);
  });
  after(() => source.close());

  it('tokenizes the io.json prompts to text.input_ids', () => {
    assert.equal((golden.meta['prompts'] as string[]).length, 3);
    assert.deepEqual(inputIds.dims, [3, 77]);
    assert.deepEqual(Array.from(inputIds.data as BigInt64Array), Array.from(golden.get('text.input_ids').data as BigInt64Array));
  });

  it('matches text.last_hidden_state [3, 77, 32]', (t) => {
    const name = 'text.last_hidden_state';
    const expected = golden.get(name);
    assert.deepEqual(lastHiddenState.dims, [3, 77, 32]);
    const options = { ...golden.tolerance(name), label: name };
    const result = compareTensors(lastHiddenState, expected, options);
    t.diagnostic(formatCompare(result));
    expectClose(lastHiddenState, expected, options);
  });

  it('takes a shorter sequence: with the causal mask the first T tokens do not change', async () => {
    const t = 9;
    const short = await runTextModel(WeightSet.fromSource(source), config, firstColumns(inputIds, t));
    assert.deepEqual(short.dims, [3, t, 32]);
    expectClose(short, firstTokens(golden.get('text.last_hidden_state'), t), { rtol: 1e-5, atol: 1e-5, label: 'T=9 prefix' });
  });

  it("switches the MLP activation with hidden_act ('gelu' = exact erf GELU)", async () => {
    const quick = buildClipTextModel(WeightSet.fromSource(source), config).opTypes();
    const erf = buildClipTextModel(WeightSet.fromSource(source), { ...config, hiddenAct: 'gelu' }).opTypes();
    assert.ok(quick.includes('Sigmoid') && !quick.includes('Erf'));
    assert.ok(erf.includes('Erf') && !erf.includes('Sigmoid'));
    const out = await runTextModel(WeightSet.fromSource(source), { ...config, hiddenAct: 'gelu' }, inputIds);
    assert.deepEqual(out.dims, [3, 77, 32]);
    assert.ok((out.data as Float32Array).every(Number.isFinite));
    const diff = compareTensors(out, golden.get('text.last_hidden_state'), { rtol: 0, atol: 0, label: 'gelu vs quick_gelu' });
    assert.ok(diff.maxAbs > 1e-3, `gelu output should differ from the quick_gelu golden, max|diff| ${diff.maxAbs}`);
  });

  it('names the tensor and both shapes when a weight has the wrong shape', () => {
    const name = 'text_model.encoder.layers.1.mlp.fc1.weight';
    const weights = WeightSet.fromTensors(tensorsWith(source, { [name]: tensor('float32', [128, 31]) }), 'text_encoder/model.safetensors');
    assert.throws(
      () => buildClipTextModel(weights, config),
      (error: unknown) => {
        assert.ok(error instanceof WeightShapeError);
        assert.equal(error.code, 'E_WEIGHT_SHAPE');
        assert.match(error.message, /text_model\.encoder\.layers\.1\.mlp\.fc1\.weight: expected \[128, 32\], got \[128, 31\]/);
        return true;
      },
    );
  });

  it('ignores text_model.embeddings.position_ids (with a reason) and builds without it too', () => {
    assert.ok(source.has(POSITION_IDS));
    assert.equal(source.info(POSITION_IDS).dtype, 'int64');
    const weights = WeightSet.fromSource(source);
    buildClipTextModel(weights, config);
    assert.deepEqual(weights.unused(), [POSITION_IDS]);
    assert.ok(CLIP_TEXT_MODEL_IGNORED_WEIGHTS.every((w) => w.reason.length > 0));
    buildClipTextModel(WeightSet.fromTensors(tensorsWith(source, { [POSITION_IDS]: undefined }), 'without position_ids'), config);
  });

  it('fails on any other unused tensor, naming it', () => {
    const extra = 'text_model.text_projection.weight';
    const weights = WeightSet.fromTensors(tensorsWith(source, { [extra]: tensor('float32', [32, 32]) }), 'text_encoder/model.safetensors');
    assert.throws(
      () => buildClipTextModel(weights, config),
      (error: unknown) => {
        assert.ok(error instanceof WeightUnusedError);
        assert.match(error.message, /1 weight\(s\) not used.*text_model\.text_projection\.weight/);
        assert.doesNotMatch(error.message, /position_ids/);
        return true;
      },
    );
  });

  it('fails when the config has more layers than the weights', () => {
    assert.throws(
      () => buildClipTextModel(WeightSet.fromSource(source), { ...config, numHiddenLayers: 3 }),
      /missing weight text_model\.encoder\.layers\.2\.layer_norm1\.weight: expected \[32\]/,
    );
  });
});
