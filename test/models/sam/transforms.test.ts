/** The predictor's per-image and per-prompt arithmetic: ResizeLongestSide shapes, predict()'s prompt layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preprocessShape, samPromptLayout } from '../../../src/models/sam/transforms.js';

test('ResizeLongestSide shapes: int(side * scale + 0.5)', () => {
  assert.deepEqual(preprocessShape(64, 64, 128), [128, 128]);
  assert.deepEqual(preprocessShape(61, 47, 128), [128, 99]); // the golden nonsquare run crops [:128, :99]
  assert.deepEqual(preprocessShape(512, 512, 1024), [1024, 1024]);
  assert.deepEqual(preprocessShape(480, 640, 1024), [768, 1024]);
});

test('prompt layout: points, then the padding point without a box, else the box corners; the default is the whole image', () => {
  const size = [61, 47] as const;
  const input = [128, 99] as const;
  const both = samPromptLayout({ box: [13, 20, 40, 47], points: [{ x: 26, y: 33, label: 1 }] }, size, input);
  assert.deepEqual([...both.labels], [1, 2, 3]);
  assert.deepEqual([...both.coords], [26 * (99 / 47), 33 * (128 / 61), 13 * (99 / 47), 20 * (128 / 61), 40 * (99 / 47), 47 * (128 / 61)].map(Math.fround));
  const points = samPromptLayout({ points: [{ x: 1, y: 2, label: 0 }] }, size, input);
  assert.deepEqual([...points.labels], [0, -1]);
  assert.deepEqual([...points.coords].slice(2), [0, 0]);
  assert.equal(points.box, undefined);
  const whole = samPromptLayout({}, size, input);
  assert.deepEqual([...whole.labels], [2, 3]);
  assert.deepEqual([...whole.box!], [0, 0, 99, 128]);
});
