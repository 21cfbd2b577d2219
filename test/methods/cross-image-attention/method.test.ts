import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError, ModelBuildError } from '../../../src/errors.js';
import { ciaFeeds, CIA_INPUT } from '../../../src/methods/cross-image-attention/controls.js';
import { crossImageAttention, isSwapSite, maskSource, type CIAOptions } from '../../../src/methods/cross-image-attention/index.js';
import { crossImageAttentionProcessor } from '../../../src/methods/cross-image-attention/processor.js';
import type { MethodInputs } from '../../../src/methods/method.js';
import type { AttentionSite } from '../../../src/models/unet/attention-processor.js';
import { optionsForMethod, validateTransferOptions } from '../../../src/pipeline/options.js';
import type { Tensor } from '../../../src/tensor/tensor.js';

const site = (over: Partial<AttentionSite>): AttentionSite => ({
  modulePath: 'up_blocks.3.attentions.0.transformer_blocks.0.attn1',
  kind: 'self',
  block: 'up',
  blockIndex: 3,
  level: 0,
  channels: 8,
  heads: 2,
  ...over,
});

const options = (over: Partial<CIAOptions> = {}): CIAOptions => ({
  numSteps: 6,
  skip: 2,
  guidanceScale: 1,
  crossAttn32Range: [1, 5],
  crossAttn64Range: [1, 6],
  adainRange: [2, 6],
  swapGuidanceScale: 3.5,
  contrastStrength: 1.67,
  maskedAdain: true,
  prompt: 'A photo of a bird',
  domain: 'bird',
  ...over,
});

const mask = (values: number[]): Tensor<'float32'> => ({ dtype: 'float32', dims: [4, 4], data: Float32Array.from(values) });
const inputs = (over: Partial<MethodInputs>): MethodInputs => ({ latentDims: [4, 4, 4], ...over }) as unknown as MethodInputs;

test('swap sites: up-block self-attention at levels 0 and 1 only', () => {
  assert.equal(isSwapSite(site({})), true);
  assert.equal(isSwapSite(site({ level: 1 })), true);
  assert.equal(isSwapSite(site({ level: 2 })), false);
  assert.equal(isSwapSite(site({ kind: 'cross' })), false);
  assert.equal(isSwapSite(site({ block: 'down' })), false);
  assert.throws(() => crossImageAttentionProcessor(site({ kind: 'cross', modulePath: 'x.attn2' }), { probe: false }), ModelBuildError);
});

test('feeds: every swap site gets its K/V row (absent: -1); a bad row or site is an error naming it', () => {
  const feeds = ciaFeeds({ kv: { a: 2 }, contrast: 1.67 }, ['a', 'b'], 3);
  assert.deepEqual(Array.from(feeds[CIA_INPUT.kv('a')]!.data as BigInt64Array), [2n]);
  assert.deepEqual(Array.from(feeds[CIA_INPUT.kv('b')]!.data as BigInt64Array), [-1n]);
  assert.throws(() => ciaFeeds({ kv: { a: 0 }, contrast: 1 }, ['a'], 3), /K\/V row 0 of site a must be -1 or a batch row in \[1, 3\)/);
  assert.throws(() => ciaFeeds({ kv: { a: 3 }, contrast: 1 }, ['a'], 3), /K\/V row 3 of site a/);
  assert.throws(() => ciaFeeds({ kv: { c: 1 }, contrast: 1 }, ['a'], 3), /'c' is no swap site of this UNet \(swap sites: a\)/);
  assert.throws(() => ciaFeeds({ kv: {}, contrast: NaN }, ['a'], 3), /contrast must be a finite number/);
});

test('options: --method cia takes its own defaults (AdaIN 20..100, no CFG); guidance other than 1 is refused by name', () => {
  const o = validateTransferOptions({ domain: 'bird', method: 'cia' });
  assert.deepEqual([o.adainRange, o.guidanceScale, o.crossAttn32Range, o.crossAttn64Range], [[20, 100], 1, [10, 70], [10, 90]]);
  assert.deepEqual([o.swapGuidanceScale, o.contrastStrength, o.maskedAdain], [3.5, 1.67, true]);
  assert.equal(validateTransferOptions({ domain: 'bird' }).adainRange[0], 50);
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', method: 'cia', guidanceScale: 2.5 }),
    (e: unknown) => e instanceof InvalidParameterError && e.parameter === 'guidanceScale' && /1 for Cross-Image Attention/.test(e.message),
  );
  assert.throws(() => validateTransferOptions({ domain: 'bird', contrastStrength: -1 }), /contrastStrength/);
  assert.throws(() => validateTransferOptions({ domain: 'bird', maskedAdain: 'yes' }), /Expected boolean for maskedAdain/);
  assert.throws(() => validateTransferOptions({ domain: 'bird', crossAttn64Range: [5, 5] }), /crossAttn64Range/);
});

test('run refuses classifier-free guidance (the library path without the validator)', async () => {
  await assert.rejects(() => crossImageAttention.run(inputs({}), options({ guidanceScale: 2 })), /guidanceScale must be 1 \(got 2\)/);
});

test('masks: given masks are resized to the latent; an empty one is refused (the reference would give NaN); plain AdaIN without', () => {
  const ones = Array.from({ length: 16 }, () => 1);
  const given = maskSource(inputs({ structureMask: mask(ones) }), options());
  assert.equal(given.kind, 'given');
  if (given.kind === 'given') assert.deepEqual(Array.from(given.masks.appearance), ones);
  assert.throws(
    () => maskSource(inputs({ structureMask: mask(ones.map(() => 0)) }), options()),
    (e: unknown) =>
      e instanceof InvalidParameterError &&
      /structure mask from the given mask images has 0 pixel\(s\) equal to 1/.test(e.message) &&
      /--no-masked-adain/.test(e.message),
  );
  assert.equal(maskSource(inputs({}), options({ maskedAdain: false })).kind, 'none');
  assert.equal(maskSource(inputs({}), options()).kind, 'recorded');
  // self-segmentation scores clusters against the object word: a prompt without it is refused before the loop
  assert.throws(() => maskSource(inputs({}), options({ prompt: 'a small animal' })), /prompt/);
});

test('options one method reads are refused with the other (named), and a compare gives each method its own', () => {
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', method: 'cia', featRange: [1, 5] }),
    (e: unknown) => e instanceof InvalidParameterError && e.parameter === 'featRange' && /an option of 'eye-for-an-eye' only/.test(e.message),
  );
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', swapGuidanceScale: 2 }),
    (e: unknown) =>
      e instanceof InvalidParameterError &&
      e.parameter === 'swapGuidanceScale' &&
      /no value with method 'eye-for-an-eye' \(an option of 'cia' only\)/.test(e.message),
  );
  const both = { domain: 'bird', guidanceScale: 3, featRange: [1, 5] as const, contrastStrength: 2 };
  assert.deepEqual(optionsForMethod(both, 'cia'), { domain: 'bird', contrastStrength: 2, method: 'cia' });
  assert.deepEqual(optionsForMethod(both, 'eye-for-an-eye'), { domain: 'bird', guidanceScale: 3, featRange: [1, 5], method: 'eye-for-an-eye' });
  assert.equal(validateTransferOptions(optionsForMethod(both, 'cia')).contrastStrength, 2);
});
