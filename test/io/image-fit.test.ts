import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { InvalidParameterError } from '../../src/errors.js';
import { decodeRgb } from '../../src/io/decode.js';
import { FITS, fitRaster, imageSize, loadImage, loadMask, loadSamInput, rasterToTensor } from '../../src/io/image.js';
import { cv2ResizeLinear } from '../../src/io/resample/cv2.js';
import { pilResize } from '../../src/io/resample/pil.js';
import type { Raster } from '../../src/io/resample/raster.js';
import { writePng } from './png-writer.js';

const pattern = (width: number, height: number): number[] => Array.from({ length: width * height * 3 }, (_, i) => (i * 53 + (i % 7) * 11) % 256);
const rgbPng = (width: number, height: number): Buffer => writePng({ width, height, colorType: 2, bitDepth: 8, samples: pattern(width, height) });
const raster = (width: number, height: number): Raster => ({ width, height, channels: 3, data: Uint8Array.from(pattern(width, height)) });

test('a square RGB image gives the official pixels (Pillow BICUBIC) in every fit mode', async () => {
  const png = rgbPng(24, 24);
  const official = rasterToTensor(pilResize(raster(24, 24), 16, 16, 'bicubic'));
  for (const fit of FITS) assert.deepEqual(await loadImage(png, { width: 16, height: 16 }, { fit }), official, fit);
});

test('cover centre-crops to the target aspect; contain pads with white; stretch squashes', () => {
  const img = raster(4, 2);
  const cover = fitRaster(img, { width: 2, height: 2 }, 'cover');
  assert.deepEqual([...cover.data], [...img.data.subarray(3, 9), ...img.data.subarray(15, 21)]);
  const contain = fitRaster(img, { width: 4, height: 4 }, 'contain');
  assert.deepEqual([...contain.data.subarray(0, 12)], new Array(12).fill(255));
  assert.deepEqual([...contain.data.subarray(12, 36)], [...img.data]);
  assert.deepEqual([...contain.data.subarray(36)], new Array(12).fill(255));
  assert.deepEqual(fitRaster(img, { width: 2, height: 2 }, 'stretch'), pilResize(img, 2, 2, 'bicubic'));
});

test('stretch keeps the colour under transparency and ignores EXIF; cover composites over white and rotates', async () => {
  const rgba = writePng({ width: 2, height: 2, colorType: 6, bitDepth: 8, samples: [255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0] });
  const stretch = await loadImage(rgba, { width: 2, height: 2 }, { fit: 'stretch' });
  assert.deepEqual([...stretch.data], [1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1]);
  const cover = await loadImage(rgba, { width: 2, height: 2 }, { fit: 'cover' });
  assert.ok(cover.data.every((v) => v === 1));

  const jpeg = await sharp(Buffer.from(pattern(6, 4)), { raw: { width: 6, height: 4, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  assert.deepEqual(await imageSize(jpeg, { fit: 'stretch' }), { width: 6, height: 4 });
  assert.deepEqual(await imageSize(jpeg, { fit: 'cover' }), { width: 4, height: 6 });
  assert.deepEqual(await imageSize(jpeg), { width: 4, height: 6 });
});

test('loadSamInput: stretch = cv2.imread + cv2.resize INTER_LINEAR (EXIF applied); other fits = the SD pixels', async () => {
  const jpeg = await sharp(Buffer.from(pattern(6, 4)), { raw: { width: 6, height: 4, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const official = await loadSamInput(jpeg, 8, { fit: 'stretch' });
  assert.deepEqual(official, cv2ResizeLinear(await decodeRgb(jpeg, 'cv2', 'x.jpg'), 8, 8));
  assert.notDeepEqual(official, pilResize(await decodeRgb(jpeg, 'pil', 'x.jpg'), 8, 8, 'bicubic'));
  const size = { width: 8, height: 12 };
  const sam = await loadSamInput(jpeg, size, { fit: 'cover' });
  const sd = await loadImage(jpeg, size, { fit: 'cover' });
  assert.deepEqual(rasterToTensor(sam), sd);
  assert.deepEqual([sam.width, sam.height], [8, 12]);
});

test('loadMask follows the fit geometry; contain pads with black', async () => {
  const mask = writePng({ width: 2, height: 1, colorType: 0, bitDepth: 8, samples: [255, 255] });
  const m = await loadMask(mask, { width: 2, height: 2 }, { fit: 'contain' });
  assert.deepEqual([...m.data], [1, 1, 0, 0]);
  const s = await loadMask(mask, { width: 2, height: 2 }, { fit: 'stretch' });
  assert.deepEqual([...s.data], [1, 1, 1, 1]);
});

test('an unknown fit is refused naming the value', async () => {
  await assert.rejects(
    loadImage(rgbPng(2, 2), { width: 2, height: 2 }, { fit: 'crop' as never }),
    (e: unknown) => e instanceof InvalidParameterError && e.message === "fit must be one of 'stretch', 'cover', 'contain', got 'crop'",
  );
});
