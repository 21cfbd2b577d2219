/** The linear latent-to-RGB preview: the SD 1.x factors applied per latent cell, (v + 1) / 2 to bytes, dims checked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { latentPreviewPng, latentToRgb, SD1_LATENT_RGB_FACTORS } from '../../src/server/latent-preview.js';

const byte = (v: number): number => Math.round(Math.min(Math.max((v + 1) / 2, 0), 1) * 255);

test('latentToRgb: each cell is latent · F mapped from [-1, 1] to [0, 255], row-major', () => {
  // 2 x 3 latent: cell 0 = zero (mid grey), cell 1 = channel 0 only, cell 4 = channel 3 = -2, cell 5 saturates (all channels 10: every sum > 1).
  const h = 2;
  const w = 3;
  const data = new Float32Array(4 * h * w);
  data[0 * 6 + 1] = 1;
  data[3 * 6 + 4] = -2;
  for (let c = 0; c < 4; c++) data[c * 6 + 5] = 10;
  const { pixels, width, height } = latentToRgb({ dtype: 'float32', dims: [1, 4, h, w], data });
  assert.deepEqual([width, height, pixels.length], [3, 2, 18]);
  assert.deepEqual([...pixels.subarray(0, 3)], [128, 128, 128]);
  assert.deepEqual([...pixels.subarray(3, 6)], SD1_LATENT_RGB_FACTORS[0]!.map(byte));
  assert.deepEqual(
    [...pixels.subarray(12, 15)],
    SD1_LATENT_RGB_FACTORS[3]!.map((f) => byte(-2 * f)),
  );
  const sums = [0, 1, 2].map((k) => SD1_LATENT_RGB_FACTORS.reduce((s, row) => s + 10 * row[k]!, 0));
  assert.deepEqual([...pixels.subarray(15, 18)], sums.map(byte));
  assert.deepEqual(sums.map(byte), [255, 255, 255], 'saturated: every column of F sums to more than 0.1');
});

test('latentPreviewPng: a PNG at the latent size; other shapes are refused by name', async () => {
  const png = await latentPreviewPng({ dtype: 'float32', dims: [1, 4, 5, 7], data: new Float32Array(140) });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 7, 5, 3]);
  assert.throws(
    () => latentToRgb({ dtype: 'float32', dims: [1, 16, 4, 4], data: new Float32Array(256) }),
    /latent preview: expected a \[1, 4, h, w\] latent but received dims \[1, 16, 4, 4\]/,
  );
  assert.throws(() => latentToRgb({ dtype: 'float32', dims: [4, 4, 4], data: new Float32Array(64) }), /received dims \[4, 4, 4\]/);
});
