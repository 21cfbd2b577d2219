import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError } from '../../../../src/errors.js';
import { LegacyRandomState } from '../../../../src/methods/shared/self-segmentation/mt19937.js';

// Expected values: NumPy 2.4 legacy RandomState (unchanged since NumPy 1.17), printed with full precision.
test('random_sample reproduces RandomState(0) and RandomState(2**32 - 1)', () => {
  assert.deepEqual([...new LegacyRandomState(0).randomSample(3)], [0.5488135039273248, 0.7151893663724195, 0.6027633760716439]);
  assert.deepEqual([...new LegacyRandomState(2 ** 32 - 1).randomSample(2)], [0.0976320289940138, 0.9123828453026218]);
});

test('randint(64) then uniform(size=3) after seed(1): the k-means++ draw pattern', () => {
  const r = new LegacyRandomState(1);
  assert.deepEqual([r.randint(64), r.randint(64), r.randint(64)], [37, 43, 12]);
  assert.deepEqual([...r.uniform(3)], [0.9325573593386588, 0.12812444792935673, 0.9990405153241447]);
  assert.equal(r.drawn, 3 + 6);
});

test('randint with non power-of-two ranges rejects masked draws as NumPy does', () => {
  const r = new LegacyRandomState(1);
  assert.deepEqual(
    Array.from({ length: 5 }, () => r.randint(100)),
    [37, 12, 72, 9, 75],
  );
  assert.equal(r.randint(1000), 645);
  assert.equal(r.randint(2 ** 31 - 1), 630311759);
  const s = new LegacyRandomState(42);
  assert.deepEqual([s.randint(0, 2 ** 31 - 1), s.randint(0, 2 ** 31 - 1), s.randint(0, 2 ** 31 - 1)], [1608637542, 1273642419, 1935803228]);
});

test('64-bit ranges and the empty range', () => {
  const r = new LegacyRandomState(7);
  assert.deepEqual([r.randint(0, 2 ** 40), r.randint(0, 2 ** 40), r.randint(0, 2 ** 40)], [752595690692, 108744157686, 291964244179]);
  const before = r.drawn;
  assert.equal(r.randint(5, 6), 5);
  assert.equal(r.drawn, before, 'a one-value range draws nothing');
});

test('re-seeding restarts the stream; bad seeds and ranges are refused by name', () => {
  const r = new LegacyRandomState(0);
  r.randomSample(10);
  r.seed(0);
  assert.equal(r.nextDouble(), 0.5488135039273248);
  assert.throws(
    () => new LegacyRandomState(-1),
    (e: unknown) => e instanceof InvalidParameterError && /seed/.test(e.message) && /-1/.test(e.message),
  );
  assert.throws(() => new LegacyRandomState(2 ** 32), InvalidParameterError);
  assert.throws(
    () => r.randint(3, 3),
    (e: unknown) => e instanceof InvalidParameterError && /randint/.test(e.message),
  );
});
