import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { ImageError } from '../../src/errors.js';
import {
  correspondencePng,
  gridPng,
  imageSize,
  loadImage,
  loadMask,
  maskToPng,
  sampleMatchedTokens,
  tensorToPng,
  tensorToRgb,
  tokenCentre,
} from '../../src/io/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const solid = (width: number, height: number, r: number, g: number, b: number): Promise<Buffer> =>
  sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

function withTemp(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'e4e-image-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('loadImage: RGB [1, 3, H, W] with x / 127.5 - 1, resized to the size asked', async () => {
  const t = await loadImage(await solid(40, 20, 255, 0, 51), { width: 16, height: 8 });
  assert.deepEqual(t.dims, [1, 3, 8, 16]);
  const plane = 8 * 16;
  assert.ok(t.data.subarray(0, plane).every((v) => v === 1));
  assert.ok(t.data.subarray(plane, 2 * plane).every((v) => v === -1));
  assert.ok(t.data.subarray(2 * plane).every((v) => Math.abs(v - (51 / 127.5 - 1)) < 1e-7));
});

test('loadImage: grayscale and RGBA inputs become RGB (transparent = white)', async () => {
  const gray = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 100, g: 100, b: 100 } } })
    .grayscale()
    .png()
    .toBuffer();
  const t = await loadImage(gray, { width: 4, height: 4 });
  assert.equal(t.dims[1], 3);
  assert.ok(t.data.every((v) => Math.abs(v - (100 / 127.5 - 1)) < 1e-6));
  const clear = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .png()
    .toBuffer();
  assert.ok((await loadImage(clear, { width: 4, height: 4 })).data.every((v) => v === 1));
});

test('tensorToPng round-trips through loadImage at the same size', async () => {
  const data = new Float32Array(3 * 6 * 5).map((_, i) => Math.round((i * 37) % 256) / 127.5 - 1);
  const image: Tensor<'float32'> = { dtype: 'float32', dims: [1, 3, 6, 5], data };
  const png = await tensorToPng(image);
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [5, 6]);
  const back = await loadImage(png, { width: 5, height: 6 });
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(back.data[i]! - data[i]!) < 1e-6, `pixel ${i}`);
});

test('tensorToRgb clamps and rounds: round(clamp(x / 2 + 0.5, 0, 1) * 255)', () => {
  const { pixels } = tensorToRgb({ dtype: 'float32', dims: [3, 1, 1], data: Float32Array.of(-2, 0, 0.5) });
  assert.deepEqual([...pixels], [0, 128, 191]);
  assert.throws(() => tensorToRgb({ dtype: 'float32', dims: [1, 4, 1, 1], data: new Float32Array(4) }), ImageError);
});

test(
  'imageSize and missing / non-image files name the file',
  withTemp(async (dir) => {
    const png = join(dir, 'a.png');
    writeFileSync(png, await solid(30, 10, 1, 2, 3));
    assert.deepEqual(await imageSize(png), { width: 30, height: 10 });
    const missing = join(dir, 'missing.png');
    await assert.rejects(
      loadImage(missing, { width: 8, height: 8 }),
      (e: unknown) => e instanceof ImageError && e.message === `${missing}: image file not found`,
    );
    const text = join(dir, 'notes.png');
    writeFileSync(text, 'this is not an image');
    await assert.rejects(loadImage(text, { width: 8, height: 8 }), (e: unknown) => {
      assert.ok(e instanceof ImageError);
      assert.equal(e.code, 'E_IMAGE');
      assert.ok(e.message.startsWith(`${resolve(text)}: not a readable image (`), e.message);
      return true;
    });
    await assert.rejects(imageSize(dir), (e: unknown) => e instanceof ImageError && e.message === `${dir}: expected image file, found a folder`);
  }),
);

test(
  'loadMask: gray > 127 is 1, resized to the working size; an empty mask names the file',
  withTemp(async (dir) => {
    // Left half white, right half dark gray (127 is not > 127).
    const raw = Buffer.alloc(8 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) raw.fill(x < 4 ? 255 : 127, (y * 8 + x) * 3, (y * 8 + x + 1) * 3);
    const mask = await sharp(raw, { raw: { width: 8, height: 4, channels: 3 } })
      .png()
      .toBuffer();
    const m = await loadMask(mask, { width: 8, height: 4 });
    assert.deepEqual(m.dims, [4, 8]);
    assert.deepEqual([...m.data.subarray(0, 8)], [1, 1, 1, 1, 0, 0, 0, 0]);
    const up = await loadMask(mask, { width: 16, height: 8 });
    assert.deepEqual(up.dims, [8, 16]);
    // Upscaled (cubic) then thresholded: the left columns stay object, the right ones background.
    for (let y = 0; y < 8; y++) assert.deepEqual([up.data[y * 16]!, up.data[y * 16 + 6]!, up.data[y * 16 + 9]!, up.data[y * 16 + 15]!], [1, 1, 0, 0]);
    const empty = join(dir, 'empty.png');
    writeFileSync(empty, await solid(16, 16, 0, 0, 0));
    await assert.rejects(loadMask(empty, { width: 8, height: 8 }), (e: unknown) => {
      assert.ok(e instanceof ImageError);
      assert.ok(e.message.startsWith(`${empty}: mask is empty (no pixel brighter than 127 at 8x8)`), e.message);
      return true;
    });
    const png = await maskToPng(m);
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [8, 4, 1]);
  }),
);

test('gridPng: panels side by side with a label strip', async () => {
  const img = (w: number): Tensor<'float32'> => ({ dtype: 'float32', dims: [1, 3, 32, w], data: new Float32Array(3 * 32 * w) });
  const labelled = await sharp(
    await gridPng([
      { image: img(32), label: 'structure' },
      { image: img(48), label: 'a & b' },
    ]),
  ).metadata();
  assert.deepEqual([labelled.width, labelled.height], [80, 56]);
  const plain = await sharp(await gridPng([{ image: img(32) }, { image: img(32) }, { image: img(32) }])).metadata();
  assert.deepEqual([plain.width, plain.height], [96, 32]);
});

test('token centres and the matched-token subsample', () => {
  assert.deepEqual(tokenCentre(0, { width: 16, height: 16 }, { width: 128, height: 128 }), { x: 4, y: 4 });
  assert.deepEqual(tokenCentre(17, { width: 16, height: 8 }, { width: 256, height: 128 }), { x: 24, y: 24 });
  assert.deepEqual(sampleMatchedTokens([-1, 3, -2, 5], 24), [1, 3]);
  const many = sampleMatchedTokens(
    Array.from({ length: 100 }, (_, i) => i),
    4,
  );
  assert.deepEqual(many, [12, 37, 62, 87]);
  assert.deepEqual(sampleMatchedTokens(BigInt64Array.of(-1n, 2n), 5), [1]);
});

test('correspondencePng: result and appearance side by side', async () => {
  const img: Tensor<'float32'> = { dtype: 'float32', dims: [1, 3, 64, 128], data: new Float32Array(3 * 64 * 128) };
  const indices = BigInt64Array.from({ length: 32 }, (_, i) => BigInt(31 - i));
  const png = await correspondencePng(img, img, { width: 8, height: 4, indices });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [256, 88]); // 64 px panels + the 24 px label strip
  // Lines are drawn: the picture is not the plain black input any more.
  const stats = await sharp(png).stats();
  assert.ok(stats.channels.some((c) => c.max > 0));
});
