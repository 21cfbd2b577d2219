import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { InvalidParameterError } from '../../src/errors.js';
import { cv2ResizeLinear } from '../../src/io/resample/cv2.js';
import { pilResize } from '../../src/io/resample/pil.js';
import type { Raster } from '../../src/io/resample/raster.js';
import { fixturesDir } from '../helpers/paths.js';
import { readGoldenTensor } from '../helpers/read-golden-tensor.js';

const subset = join(fixturesDir, 'golden', 'images', 'io.safetensors');

function goldenRaster(name: string): Raster {
  const t = readGoldenTensor(name, subset);
  assert.ok(t.data instanceof Uint8Array, `${name} is uint8`);
  const [height, width, channels] = t.dims;
  return { width: width!, height: height!, channels: channels!, data: t.data };
}

function maxDiff(a: Raster, b: Raster): number {
  assert.deepEqual([a.width, a.height, a.channels], [b.width, b.height, b.channels]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

const row = (...values: number[]): Raster => ({ width: values.length, height: 1, channels: 1, data: Uint8Array.from(values) });

const subsetImages = [
  'rgba_160x120',
  'gray_L_123x77',
  'palette_P_90x140',
  'gray_alpha_LA_64x48',
  'gray16_I16_100x80',
  'rgb16_96x64',
  'tiny_1x1',
  'jpeg_exif_rot90_120x80',
];

test('pilResize bicubic reproduces Pillow 9.4 bit for bit (golden sd_64 / sd_96x160 from the rgb tensors)', () => {
  let checked = 0;
  for (const image of subsetImages) {
    const rgb = goldenRaster(`images.${image}.rgb`);
    assert.equal(maxDiff(pilResize(rgb, 64, 64, 'bicubic'), goldenRaster(`images.${image}.sd_64`)), 0, `${image} sd_64`);
    checked++;
    if (image === 'rgba_160x120' || image === 'palette_P_90x140') {
      assert.equal(maxDiff(pilResize(rgb, 96, 160, 'bicubic'), goldenRaster(`images.${image}.sd_96x160`)), 0, `${image} sd_96x160`);
      checked++;
    }
  }
  assert.equal(checked, 10);
});

test('cv2ResizeLinear reproduces OpenCV 4.6 INTER_LINEAR bit for bit (golden sam_512 from cv2_decoded)', () => {
  const out = cv2ResizeLinear(goldenRaster('images.rgba_160x120.cv2_decoded'), 512, 512);
  assert.equal(maxDiff(out, goldenRaster('images.rgba_160x120.sam_512')), 0);
});

test('pilResize bilinear: antialiased downscale (support x2) and plain upscale, 22-bit fixed point', () => {
  // 4 -> 2: weights (3, 3, 1) / 7 and (1, 3, 3) / 7 -> (0*3 + 70*3 + 140) / 7 = 50, (70 + 140*3 + 210*3) / 7 = 160.
  assert.deepEqual([...pilResize(row(0, 70, 140, 210), 2, 1, 'bilinear').data], [50, 160]);
  // 2 -> 4: centres 0.25, 0.75, 1.25, 1.75 -> 0, 25, 75, 100.
  assert.deepEqual([...pilResize(row(0, 100), 4, 1, 'bilinear').data], [0, 25, 75, 100]);
  // bicubic overshoots and clips to 0..255 on a step.
  const step = pilResize(row(0, 0, 255, 255), 8, 1, 'bicubic');
  assert.ok(step.data.includes(0) && step.data.includes(255));
});

test('pilResize skips a pass whose size does not change and copies when neither changes', () => {
  const column: Raster = { width: 1, height: 4, channels: 1, data: Uint8Array.from([0, 70, 140, 210]) };
  assert.deepEqual([...pilResize(column, 1, 2, 'bilinear').data], [50, 160]);
  const same = pilResize(column, 1, 4, 'bicubic');
  assert.deepEqual([...same.data], [0, 70, 140, 210]);
  assert.notEqual(same.data, column.data);
});

test('cv2ResizeLinear: 11-bit weights, clamped border columns, rounding of the vertical pass', () => {
  // fx = -0.25 (clamped to the first column), 0.25, 0.75, 1.25 (one tap on the last column). 101 * 0.25 = 25.25 and
  // 101 * 0.75 = 75.75: (((2048 * ((101 * 1536) >> 4)) >> 16) + 2) >> 2 = 76.
  assert.deepEqual([...cv2ResizeLinear(row(0, 101), 4, 1).data], [0, 25, 76, 101]);
});

test('cv2ResizeLinear: an exact 2x downscale is INTER_AREA 2x2 mean (a + b + c + d + 2) >> 2', () => {
  const img: Raster = { width: 4, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]) };
  assert.deepEqual([...cv2ResizeLinear(img, 2, 1).data], [4, 6]);
  // 3 channels: each channel separately.
  const rgb: Raster = { width: 2, height: 2, channels: 3, data: Uint8Array.from([0, 10, 255, 1, 10, 255, 2, 11, 254, 2, 11, 255]) };
  assert.deepEqual([...cv2ResizeLinear(rgb, 1, 1).data], [(0 + 1 + 2 + 2 + 2) >> 2, (10 + 10 + 11 + 11 + 2) >> 2, (255 + 255 + 254 + 255 + 2) >> 2]);
});

test('resamplers refuse bad sizes and inconsistent rasters with the value at fault', () => {
  assert.throws(
    () => pilResize(row(1, 2), 0, 1, 'bicubic'),
    (e: unknown) => e instanceof InvalidParameterError && /target size .* 0x1/.test(e.message),
  );
  assert.throws(
    () => cv2ResizeLinear(row(1, 2), 2.5, 1),
    (e: unknown) => e instanceof InvalidParameterError && /2\.5x1/.test(e.message),
  );
  const bad: Raster = { width: 3, height: 1, channels: 1, data: new Uint8Array(2) };
  assert.throws(
    () => cv2ResizeLinear(bad, 2, 2),
    (e: unknown) => e instanceof InvalidParameterError && /2 bytes, expected 1x3x1 = 3/.test(e.message),
  );
});
