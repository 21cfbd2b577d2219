import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError } from '../../../../src/errors.js';
import { isSameClustering, kmeansFit } from '../../../../src/methods/shared/self-segmentation/kmeans.js';
import { LegacyRandomState } from '../../../../src/methods/shared/self-segmentation/mt19937.js';
import {
  columnMeanF32,
  columnVarianceF32,
  pairwiseSumF32,
  pairwiseSumF64,
  staticBlock,
} from '../../../../src/methods/shared/self-segmentation/numpy-float32.js';

const series = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 1000 + 1e-3 * i);

test('pairwise float32 sums equal NumPy float32 sum (and differ from a plain running sum where NumPy does)', () => {
  // NumPy 2.4: a = (sin(i * 0.37) * 1000 + 1e-3 * i).astype(float32); a.sum(), running sum, float64 sum.
  const cases: [number, number, number, number][] = [
    [7, 4797793 / 1024, 4797793 / 1024, 4685.344512939453],
    [100, 953.48590087890625, 953.48590087890625, 953.4855270385742],
    [1000, 1466.64599609375, 1466.646484375, 1466.646168231964],
    [4099, 12664.453125, 12664.435546875, 12664.454673375934],
  ];
  for (const [n, numpy, running, f64] of cases) {
    const a = series(n);
    assert.equal(pairwiseSumF32(a), numpy, `n=${n}`);
    let seq = 0;
    for (const v of a) seq = Math.fround(seq + v);
    assert.equal(seq, running, `running sum n=${n}`);
    assert.ok(Math.abs(pairwiseSumF64(Float64Array.from(a)) - f64) < 1e-9, `float64 n=${n}`);
  }
});

test('column mean and variance as NumPy float32 axis-0 reductions', () => {
  const x = Float32Array.from([
    0.0, 2.890674591064453, 1.5465041399002075, -2.063298463821411, -2.6503639221191406, 0.645359992980957, 2.9956300258636475, 0.9572950601577759,
    -2.4834794998168945, -2.2859506607055664, 1.2605011463165283, 2.9603159427642822,
  ]);
  assert.deepEqual([...columnMeanF32(x, 4, 3)], [-0.3384047746658325, 0.6145267486572266, 0.6671751141548157]);
  assert.deepEqual([...columnVarianceF32(x, 4, 3)], [4.499624729156494, 4.093783378601074, 3.98970365524292]);
});

test('OpenMP static blocks: the first count % threads threads take one more', () => {
  assert.deepEqual(
    [0, 1, 2].map((t) => staticBlock(10, 3, t)),
    [
      { start: 0, end: 4 },
      { start: 4, end: 7 },
      { start: 7, end: 10 },
    ],
  );
  assert.deepEqual(staticBlock(1, 2, 1), { start: 1, end: 1 });
});

test('_is_same_clustering: a consistent one-way mapping (a renumbering passes, a split fails)', () => {
  assert.equal(isSameClustering(Int32Array.of(0, 0, 1, 2), Int32Array.of(2, 2, 0, 1), 3), true);
  assert.equal(isSameClustering(Int32Array.of(0, 0, 1, 2), Int32Array.of(2, 1, 0, 1), 3), false);
  // One-way, as sklearn checks it: two clusters of labels1 may map onto one of labels2.
  assert.equal(isSameClustering(Int32Array.of(0, 1, 2), Int32Array.of(0, 0, 1), 3), true);
});

test('three separated blobs are found, the RandomState advances 1 + 2 * trials * (k - 1) outputs per init', () => {
  const points: number[] = [];
  const centres = [
    [0, 0],
    [10, 0],
    [0, 10],
  ];
  for (let i = 0; i < 30; i++) {
    const c = centres[i % 3]!;
    points.push(c[0]! + Math.sin(i) * 0.5, c[1]! + Math.cos(i * 1.7) * 0.5);
  }
  const rng = new LegacyRandomState(1);
  const fit = kmeansFit(Float32Array.from(points), 30, 2, rng, { nClusters: 3, nInit: 4 });
  assert.equal(fit.nLocalTrials, 3); // 2 + int(ln 3)
  assert.equal(rng.drawn, 4 * (1 + 2 * 3 * 2));
  for (let i = 0; i < 30; i++) assert.equal(fit.labels[i], fit.labels[i % 3], `sample ${i} is with its blob`);
  assert.equal(new Set(fit.labels).size, 3);
  assert.ok(fit.inertia < 30 * 0.5, `inertia ${fit.inertia}`);
  assert.ok(fit.inits.every((init) => init.strictConvergence && init.nIter >= 1));
  // cluster_centers are the kept centers + the column mean.
  const best = fit.inits[fit.bestInit]!;
  assert.equal(fit.clusterCenters[0], Math.fround(best.centers[0]! + fit.xMean[0]!));
});

test('bad inputs are refused by name', () => {
  const rng = new LegacyRandomState(1);
  assert.throws(
    () => kmeansFit(new Float32Array(6), 3, 2, rng, { nClusters: 4 }),
    (e: unknown) => e instanceof InvalidParameterError && /nClusters/.test(e.message) && /number of samples \(3\)/.test(e.message),
  );
  assert.throws(
    () => kmeansFit(new Float32Array(5), 3, 2, rng),
    (e: unknown) => e instanceof InvalidParameterError && /X\.length/.test(e.message),
  );
  const x = new Float32Array(6);
  x[3] = NaN;
  assert.throws(
    () => kmeansFit(x, 3, 2, rng, { nClusters: 2 }),
    (e: unknown) => e instanceof InvalidParameterError && /sample 1, feature 1 is NaN/.test(e.message),
  );
});
