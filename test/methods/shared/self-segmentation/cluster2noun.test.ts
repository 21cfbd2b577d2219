import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError } from '../../../../src/errors.js';
import { clusterToNoun, type AttentionMap } from '../../../../src/methods/shared/self-segmentation/cluster2noun.js';
import { promptNouns } from '../../../../src/methods/shared/self-segmentation/index.js';

/** A 2x2 cross-attention map over 4 tokens; token 5 (= word 4 + 1) holds the noun's attention. */
function cross(values: number[], token = 2): AttentionMap {
  const keys = 4;
  const data = new Float32Array(4 * keys);
  values.forEach((v, p) => (data[p * keys + token] = v));
  return { data, height: 2, width: 2, keys };
}

// 4x4 cluster map: cluster c = the quadrant; cluster 4 takes the bottom-right corner pixel.
const labels = Int32Array.from({ length: 16 }, (_, p) => {
  const y = Math.floor(p / 4);
  const x = p % 4;
  return p === 15 ? 4 : (y >= 2 ? 2 : 0) + (x >= 2 ? 1 : 0);
});
const nouns = { nouns: [{ index: 1, word: 'bird' }], objectNouns: ['bird'] };

test('noun maps are repeated x2 and normalised as (m - |min|) / max; the strong cluster gets the noun', () => {
  const r = clusterToNoun(labels, { height: 4, width: 4, clusters: 5 }, cross([0.1, 0.2, 0.3, 0.9]), nouns);
  const f = Math.fround;
  assert.deepEqual([...r.nounMaps], [0.1, 0.2, 0.3, 0.9].map(f));
  assert.equal(r.normalizedNounMaps[0], f(f(f(0.1) - f(0.1)) / f(0.9)));
  assert.equal(r.normalizedNounMaps[15], f(f(f(0.9) - f(0.1)) / f(0.9)));
  // Cluster scores are the mean normalised value over the cluster; threshold = 1.4 x mean of the others' best.
  const v = (m: number): number => f(f(f(m) - f(0.1)) / f(0.9));
  assert.deepEqual([...r.scores], [v(0.1), v(0.2), v(0.3), v(0.9), v(0.9)]);
  const others = [v(0.1), v(0.2), v(0.3), v(0.9)]; // the first occurrence of the max (cluster 3) is dropped
  assert.equal(r.threshold, (1.4 * (0 + others[0]! + others[1]! + others[2]! + others[3]!)) / 4);
  assert.deepEqual([...r.assignment], [-1, -1, -1, 1, 1]);
  assert.deepEqual(
    [...r.mask],
    [...labels].map((c) => (c >= 3 ? 1 : 0)),
  );
});

test("the reference's 'BG'[1] quirk: an object noun 'G' selects the background clusters", () => {
  const r = clusterToNoun(labels, { height: 4, width: 4, clusters: 5 }, cross([0.1, 0.2, 0.3, 0.9]), { nouns: nouns.nouns, objectNouns: ['G'] });
  assert.deepEqual(
    [...r.mask],
    [...labels].map((c) => (c < 3 ? 1 : 0)),
  );
});

test('size mismatches and out-of-range tokens are errors naming them', () => {
  assert.throws(
    () => clusterToNoun(labels, { height: 4, width: 4, clusters: 5 }, { ...cross([1, 1, 1, 1]), height: 3 }, nouns),
    (e: unknown) => e instanceof InvalidParameterError && /cross-attention map size/.test(e.message) && /2x2/.test(e.message),
  );
  assert.throws(
    () => clusterToNoun(labels, { height: 4, width: 4, clusters: 5 }, cross([1, 1, 1, 1]), { nouns: [{ index: 3, word: 'x' }], objectNouns: ['x'] }),
    (e: unknown) => e instanceof InvalidParameterError && /noun 'x' token/.test(e.message),
  );
});

test('promptNouns finds the object words by their nltk word index; a prompt without them is refused', () => {
  assert.deepEqual(promptNouns('A photo of a bird', ['bird']), [{ index: 4, word: 'bird' }]);
  assert.deepEqual(promptNouns('A bird, and a bird.', ['bird']), [
    { index: 1, word: 'bird' },
    { index: 5, word: 'bird' },
  ]);
  assert.throws(
    () => promptNouns('A photo of a cat', ['bird']),
    (e: unknown) => e instanceof InvalidParameterError && /containing the object word\(s\) 'bird'/.test(e.message) && /A photo of a cat/.test(e.message),
  );
});
