import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError } from '../../src/errors.js';
import { DEFAULT_TRANSFER_OPTIONS, TRANSFER_OPTION_KEYS, validateTransferOptions, workingSize } from '../../src/pipeline/options.js';
import { TRANSFER_CLI_OPTIONS } from '../../src/cli/options-table.js';

test('defaults: the authors example run, prompt from the domain', () => {
  const o = validateTransferOptions({ domain: 'bird' });
  assert.deepEqual(
    { ...o },
    {
      method: 'eye-for-an-eye',
      domain: 'bird',
      prompt: 'A photo of a bird',
      numSteps: 100,
      skip: 32,
      guidanceScale: 2.5,
      inversionGuidance: 3.5,
      featRange: [10, 70],
      adainRange: [50, 100],
      seed: 0,
      size: 512,
      fit: 'cover',
      injection: 'match',
      device: 'cpu',
      precision: 'fp32',
    },
  );
  assert.equal(DEFAULT_TRANSFER_OPTIONS.numSteps, 100);
  assert.ok(Object.isFrozen(o));
});

test('given values are kept', () => {
  const mask = Buffer.from([1, 2, 3]);
  const o = validateTransferOptions({
    domain: 'cat',
    prompt: 'a cat',
    numSteps: 20,
    skip: 6,
    guidanceScale: 1,
    inversionGuidance: 5,
    featRange: [2, 14],
    adainRange: [10, 20],
    seed: 1100,
    size: 128,
    structureMask: 'm.png',
    appearanceMask: mask,
    injection: 'vInjection',
    device: 'cuda',
    cacheDir: '/tmp/x',
  });
  assert.equal(o.prompt, 'a cat');
  assert.equal(o.appearanceMask, mask);
  assert.equal(o.structureMask, 'm.png');
  assert.equal(o.cacheDir, '/tmp/x');
  assert.deepEqual(o.featRange, [2, 14]);
});

const cases: [string, Record<string, unknown>, string][] = [
  ['numSteps 0', { numSteps: 0 }, 'Expected integer between 1 and 1000 for numSteps but received 0 of type number'],
  ['numSteps 2.5', { numSteps: 2.5 }, 'Expected integer between 1 and 1000 for numSteps but received 2.5 of type number'],
  ['numSteps string', { numSteps: '10' }, "Expected integer between 1 and 1000 for numSteps but received '10' of type string"],
  ['skip = numSteps', { numSteps: 20, skip: 20 }, 'Expected integer between 0 and 19 for skip but received 20 of type number'],
  ['skip negative', { skip: -1 }, 'Expected integer between 0 and 99 for skip but received -1 of type number'],
  ['guidance < 1', { guidanceScale: 0.5 }, 'Expected number between 1 and 50 for guidanceScale but received 0.5 of type number'],
  ['guidance NaN', { guidanceScale: Number.NaN }, 'Expected number between 1 and 50 for guidanceScale but received NaN of type number'],
  ['inversion guidance', { inversionGuidance: 100 }, 'Expected number between 1 and 50 for inversionGuidance but received 100 of type number'],
  [
    'featRange reversed',
    { featRange: [70, 10] },
    'Expected [start, end] of integers with 0 <= start < end <= 1000 for featRange but received [70,10] of type array',
  ],
  ['featRange empty', { featRange: [5, 5] }, 'Expected [start, end] of integers with 0 <= start < end <= 1000 for featRange but received [5,5] of type array'],
  [
    'hookSites not attn1',
    { hookSites: ['up_blocks.3'] },
    'Expected non-empty list of distinct attn1 module paths (e.g. up_blocks.2.attentions.0.transformer_blocks.0.attn1) for hookSites but received ["up_blocks.3"] of type array',
  ],
  [
    'hookSites repeated',
    { hookSites: ['up_blocks.3.attentions.0.transformer_blocks.0.attn1', 'up_blocks.3.attentions.0.transformer_blocks.0.attn1'] },
    'Expected non-empty list of distinct attn1 module paths (e.g. up_blocks.2.attentions.0.transformer_blocks.0.attn1) for hookSites but received ["up_blocks.3.attentions.0.transformer_blocks.0.attn1","up_blocks.3.attentions.0.transformer_blocks.0.attn1"] of type array',
  ],
  [
    'adainRange negative',
    { adainRange: [-1, 10] },
    'Expected [start, end] of integers with 0 <= start < end <= 1000 for adainRange but received [-1,10] of type array',
  ],
  [
    'adainRange not array',
    { adainRange: '50,100' },
    "Expected [start, end] of integers with 0 <= start < end <= 1000 for adainRange but received '50,100' of type string",
  ],
  ['seed negative', { seed: -3 }, `Expected integer between 0 and ${Number.MAX_SAFE_INTEGER} for seed but received -3 of type number`],
  ['size 100', { size: 100 }, 'Expected multiple of 64 between 64 and 2048 for size but received 100 of type number'],
  ['size 4096', { size: 4096 }, 'Expected multiple of 64 between 64 and 2048 for size but received 4096 of type number'],
  ['fit', { fit: 'crop' }, "Expected one of 'stretch', 'cover', 'contain' for fit but received 'crop' of type string"],
  ['injection', { injection: 'swap' }, "Expected one of 'match', 'vInjection' for injection but received 'swap' of type string"],
  ['device', { device: 'tpu' }, "Expected one of 'cpu', 'cuda', 'webgpu' for device but received 'tpu' of type string"],
  ['empty prompt', { prompt: ' ' }, "Expected non-empty string for prompt but received ' ' of type string"],
  ['mask number', { structureMask: 3 }, 'Expected non-empty string for structureMask but received 3 of type number'],
  ['cacheDir empty', { cacheDir: '' }, "Expected non-empty string for cacheDir but received '' of type string"],
];

for (const [name, extra, message] of cases) {
  test(`rejects ${name}`, () => {
    assert.throws(
      () => validateTransferOptions({ domain: 'bird', ...extra }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError);
        assert.equal(e.code, 'E_INVALID_PARAMETER');
        assert.equal(e.message, message);
        return true;
      },
    );
  });
}

test('rejects a missing domain and non-objects', () => {
  assert.throws(() => validateTransferOptions({}), { message: 'Expected non-empty string for domain but received undefined of type undefined' });
  assert.throws(() => validateTransferOptions(null), { message: 'Expected object for options but received null' });
});

test('rejects unknown keys by name', () => {
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', steps: 10, guidance: 2 }),
    (e: unknown) => {
      assert.ok(e instanceof InvalidParameterError);
      assert.match(e.message, /^Unknown options 'steps', 'guidance' \(known options: method, domain, prompt, numSteps/);
      return true;
    },
  );
});

test('every option has a CLI flag or an explicit null', () => {
  assert.deepEqual(Object.keys(TRANSFER_CLI_OPTIONS).sort(), [...TRANSFER_OPTION_KEYS].sort());
  const flags = Object.values(TRANSFER_CLI_OPTIONS).flatMap((f) => (f === null ? [] : [f.flag]));
  assert.equal(new Set(flags).size, flags.length);
});

test('working size: short side = size, long side keeps the aspect in multiples of 64', () => {
  assert.deepEqual(workingSize(512, 512, 512), { width: 512, height: 512 });
  assert.deepEqual(workingSize(512, 1024, 768), { width: 704, height: 512 }); // 682.7 -> 704
  assert.deepEqual(workingSize(512, 600, 1000), { width: 512, height: 832 }); // 853.3 -> 832
  assert.deepEqual(workingSize(128, 300, 150), { width: 256, height: 128 });
  assert.deepEqual(workingSize(128, 130, 129), { width: 128, height: 128 });
});

test('precision: fp32 by default, fp16 accepted, anything else rejected by name', () => {
  assert.equal(validateTransferOptions({ domain: 'bird' }).precision, 'fp32');
  assert.equal(validateTransferOptions({ domain: 'bird', precision: 'fp16' }).precision, 'fp16');
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', precision: 'bf16' }),
    /Expected one of 'fp32', 'fp16' for precision but received 'bf16' of type string/,
  );
});

test('the default skip and ranges follow the step count and skip (the reference values at 100 / 32)', () => {
  const at = (extra: Record<string, unknown>): [number, readonly number[], readonly number[]] => {
    const o = validateTransferOptions({ domain: 'bird', ...extra });
    return [o.skip, o.featRange, o.adainRange];
  };
  assert.deepEqual(at({}), [32, [10, 70], [50, 100]]);
  // 50 steps: skip 16 and 34 iterations, so [10, 70) and [50, 100) of 68 become [5, 35) and [25, 50).
  assert.deepEqual(at({ numSteps: 50 }), [16, [5, 35], [25, 50]]);
  // An explicit skip: the ranges scale to the iterations left (18).
  assert.deepEqual(at({ numSteps: 50, skip: 32 }), [32, [3, 19], [13, 26]]);
  assert.deepEqual(at({ numSteps: 6 }), [2, [1, 4], [3, 6]]);
  assert.deepEqual(at({ numSteps: 1 }), [0, [0, 1], [1, 2]]);
  // Given ranges are kept as given.
  assert.deepEqual(at({ numSteps: 50, featRange: [2, 9], adainRange: [20, 21] }), [16, [2, 9], [20, 21]]);
  // Every schedule's scaled defaults fire (the validator would reject them otherwise).
  for (let numSteps = 1; numSteps <= 120; numSteps++) {
    for (let skip = 0; skip < numSteps; skip++) validateTransferOptions({ domain: 'bird', numSteps, skip });
  }
});

test('a range that cannot fire in the schedule is an error naming the steps that exist', () => {
  const hint = '\n  hint: ranges count steps from the first iteration that is not skipped; leave the range out to get the default scaled to this schedule';
  const rejects = (extra: Record<string, unknown>, parameter: string, message: string): void => {
    assert.throws(
      () => validateTransferOptions({ domain: 'bird', ...extra }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError);
        assert.equal(e.parameter, parameter);
        assert.equal(e.message, message + hint);
        return true;
      },
    );
  };
  rejects(
    { numSteps: 6, skip: 2, featRange: [100, 200] },
    'featRange',
    'featRange [100, 200) never fires: numSteps 6 and skip 2 give 4 transfer iterations, whose UNet calls see steps 0..2, so the start must be at most 2',
  );
  // The last iteration's step is never seen by the UNet (the one-step lag): [3, 4) cannot fire with 4 iterations.
  rejects(
    { numSteps: 6, skip: 2, featRange: [3, 4] },
    'featRange',
    'featRange [3, 4) never fires: numSteps 6 and skip 2 give 4 transfer iterations, whose UNet calls see steps 0..2, so the start must be at most 2',
  );
  // The reference's AdaIN default [50, 100) with 50 steps and skip 32 (18 iterations) would never run.
  rejects(
    { numSteps: 50, skip: 32, adainRange: [50, 100] },
    'adainRange',
    'adainRange [50, 100) never fires: numSteps 50 and skip 32 give 18 transfer iterations (steps 0..17) and AdaIN runs after steps start - 1 .. end, so the start must be at most 18',
  );
  // At the edge: AdaIN [4, 5) runs after iteration 3, the last of 4.
  assert.deepEqual(validateTransferOptions({ domain: 'bird', numSteps: 6, skip: 2, featRange: [2, 3], adainRange: [4, 5] }).adainRange, [4, 5]);
});
