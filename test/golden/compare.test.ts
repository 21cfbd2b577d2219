import { test } from 'node:test';
import assert, { AssertionError } from 'node:assert/strict';
import { compareTensors, expectClose, formatCompare } from '../helpers/expect-close.js';
import { float32, tensor } from '../../src/tensor/tensor.js';

const tol = { atol: 1e-4, rtol: 1e-3 };

test('equal tensors pass, and the report says so', () => {
  const a = float32([2, 3], [0, 1, -2, 3, 4e-7, 1000]);
  const result = compareTensors(a, float32([2, 3], [0, 1, -2, 3, 4e-7, 1000]), { ...tol, label: 'same' });
  assert.equal(result.ok, true);
  assert.equal(result.maxAbs, 0);
  assert.equal(result.maxRel, 0);
  assert.equal(result.mismatches, 0);
  assert.equal(result.count, 6);
  assert.deepEqual(result.pairs, []);
  assert.equal(formatCompare(result), 'same: PASS max|diff| 0 max rel 0 (atol 1.000e-4, rtol 0.001, n=6)');
  expectClose(a, a, { ...tol, label: 'same' });
});

test('differences inside atol + rtol*|expected| pass; just outside fail (numpy allclose)', () => {
  const expected = float32([2], [0, 1000]);
  assert.equal(compareTensors(float32([2], [0.00009, 1000.95]), expected, { ...tol, label: 'in' }).ok, true);
  const out = compareTensors(float32([2], [0, 1001.2]), expected, { ...tol, label: 'out' });
  assert.equal(out.ok, false);
  assert.equal(out.mismatches, 1);
  assert.deepEqual(out.worstIndex, [1]);
  // The tolerance scales with |expected|, not |actual|.
  assert.equal(compareTensors(float32([1], [1000]), float32([1], [0]), { atol: 1, rtol: 1, label: 'asym' }).ok, false);
});

test('a perturbed element is located and reported', () => {
  const expected = float32(
    [2, 2, 3],
    Array.from({ length: 12 }, (_, i) => i),
  );
  const data = Float32Array.from(expected.data);
  data[7] = 7.5; // index [1, 0, 1]
  data[10] = 10.02; // index [1, 1, 1], smaller violation (allowed 0.0101)
  const result = compareTensors(tensor('float32', [2, 2, 3], data), expected, { ...tol, label: 'unet.out' });
  assert.equal(result.ok, false);
  assert.equal(result.mismatches, 2);
  assert.deepEqual(result.worstIndex, [1, 0, 1]);
  assert.equal(result.maxAbs, 0.5);
  assert.ok(Math.abs(result.maxRel - 0.5 / 7) < 1e-12);
  assert.deepEqual(
    result.pairs.map((p) => p.index),
    [
      [1, 0, 1],
      [1, 1, 1],
    ],
  );
  assert.equal(result.pairs[0]!.actual, 7.5);
  assert.equal(result.pairs[0]!.expected, 7);
  const line = formatCompare(result);
  assert.equal(
    line,
    'unet.out: FAIL 2/12 elements not close; max|diff| 0.5 max rel 0.0714286 (atol 1.000e-4, rtol 0.001, n=12); ' +
      'worst at [1, 0, 1]; first pairs (actual vs expected): [1, 0, 1] 7.5 vs 7, [1, 1, 1] 10.02 vs 10',
  );
  assert.throws(
    () => expectClose(tensor('float32', [2, 2, 3], data), expected, { ...tol, label: 'unet.out' }),
    (error: unknown) => {
      assert.ok(error instanceof AssertionError);
      assert.equal(error.message, line);
      return true;
    },
  );
});

test('NaN is never close, even against NaN; equal infinities are', () => {
  const nan = compareTensors(float32([3], [1, NaN, 3]), float32([3], [1, 2, 3]), { ...tol, label: 'nan' });
  assert.equal(nan.ok, false);
  assert.equal(nan.mismatches, 1);
  assert.deepEqual(nan.worstIndex, [1]);
  assert.ok(Number.isNaN(nan.maxAbs));
  assert.equal(
    formatCompare(nan),
    'nan: FAIL 1/3 elements not close; max|diff| NaN max rel NaN (atol 1.000e-4, rtol 0.001, n=3); ' +
      'worst at [1]; first pairs (actual vs expected): [1] NaN vs 2',
  );
  assert.equal(compareTensors(float32([1], [NaN]), float32([1], [NaN]), { ...tol, label: 'nan2' }).ok, false);
  assert.equal(compareTensors(float32([2], [Infinity, -Infinity]), float32([2], [Infinity, -Infinity]), { ...tol, label: 'inf' }).ok, true);
  assert.equal(compareTensors(float32([1], [Infinity]), float32([1], [-Infinity]), { ...tol, label: 'inf2' }).ok, false);
});

test('shape mismatch fails with a shape error', () => {
  const result = compareTensors(float32([2, 3]), float32([3, 2]), { ...tol, label: 'vae.decode.image' });
  assert.equal(result.ok, false);
  assert.equal(result.shapeError, 'shape [2, 3] differs from expected [3, 2]');
  assert.equal(formatCompare(result), 'vae.decode.image: FAIL shape [2, 3] differs from expected [3, 2]');
  assert.throws(() => expectClose(float32([2, 3]), float32([3, 2]), { ...tol, label: 'vae.decode.image' }), {
    name: 'AssertionError',
    message: 'vae.decode.image: FAIL shape [2, 3] differs from expected [3, 2]',
  });
});

test('integer tensors compare as numbers (int64, uint8), across dtypes too', () => {
  const ids = tensor('int64', [3], BigInt64Array.from([49406n, 320n, 49407n]));
  assert.equal(compareTensors(ids, ids, { atol: 0, rtol: 0, label: 'ids' }).ok, true);
  const off = compareTensors(tensor('int64', [3], BigInt64Array.from([49406n, 321n, 49407n])), ids, { atol: 0, rtol: 0, label: 'ids' });
  assert.equal(off.ok, false);
  assert.deepEqual(off.pairs, [{ index: [1], actual: 321, expected: 320 }]);
  const img = tensor('uint8', [2], Uint8Array.from([10, 200]));
  assert.equal(compareTensors(tensor('uint8', [2], Uint8Array.from([11, 199])), img, { atol: 1, rtol: 0, label: 'u8' }).ok, true);
  assert.equal(compareTensors(tensor('uint8', [2], Uint8Array.from([12, 200])), img, { atol: 1, rtol: 0, label: 'u8' }).ok, false);
  assert.equal(compareTensors(float32([2], [10, 200]), img, { atol: 0, rtol: 0, label: 'mixed' }).ok, true);
  assert.equal(compareTensors(tensor('float16', [1], Uint16Array.from([0x3e00])), float32([1], [1.5]), { atol: 0, rtol: 0, label: 'f16' }).ok, true);
});
