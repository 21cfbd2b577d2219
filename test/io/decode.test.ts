import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { ImageError } from '../../src/errors.js';
import { applyOrientation, decodeRgb, type DecodePath } from '../../src/io/decode.js';
import { decodePng } from '../../src/io/png.js';
import { writePng } from './png-writer.js';

const rgb = async (png: Buffer, path: DecodePath): Promise<number[]> => [...(await decodeRgb(png, path, 'test.png')).data];

test('16-bit gray: Pillow clips to 0..255, cv2.imread takes the high byte, ours scales', async () => {
  const png = writePng({ width: 4, height: 1, colorType: 0, bitDepth: 16, samples: [0, 100, 300, 65535] });
  const triple = (vs: number[]): number[] => vs.flatMap((v) => [v, v, v]);
  assert.deepEqual(await rgb(png, 'pil'), triple([0, 100, 255, 255]));
  assert.deepEqual(await rgb(png, 'cv2'), triple([0, 0, 1, 255]));
  assert.deepEqual(await rgb(png, 'oriented'), triple([0, 0, 1, 255]));
});

test('16-bit RGB: both official paths take the high byte (not round(v / 257)); ours rounds', async () => {
  const png = writePng({ width: 1, height: 1, colorType: 2, bitDepth: 16, samples: [0x12ff, 0xab80, 0x0080] });
  assert.deepEqual(await rgb(png, 'pil'), [0x12, 0xab, 0x00]);
  assert.deepEqual(await rgb(png, 'cv2'), [0x12, 0xab, 0x00]);
  assert.deepEqual(await rgb(png, 'oriented'), [Math.round(0x12ff / 257), Math.round(0xab80 / 257), Math.round(0x80 / 257)]);
});

test('palette with tRNS: the official paths ignore the transparency, ours composites it over white', async () => {
  const png = writePng({
    width: 3,
    height: 1,
    colorType: 3,
    bitDepth: 4,
    samples: [0, 1, 2],
    palette: [255, 0, 0, 0, 0, 255, 10, 20, 30],
    transparency: [0, 255],
  });
  assert.deepEqual(await rgb(png, 'pil'), [255, 0, 0, 0, 0, 255, 10, 20, 30]);
  assert.deepEqual(await rgb(png, 'cv2'), [255, 0, 0, 0, 0, 255, 10, 20, 30]);
  assert.deepEqual(await rgb(png, 'oriented'), [255, 255, 255, 0, 0, 255, 10, 20, 30]);
});

test('RGBA and gray+alpha: alpha dropped without compositing officially, composited over white by ours', async () => {
  const rgba = writePng({ width: 2, height: 1, colorType: 6, bitDepth: 8, samples: [255, 0, 255, 0, 10, 20, 30, 128] });
  assert.deepEqual(await rgb(rgba, 'pil'), [255, 0, 255, 10, 20, 30]);
  assert.deepEqual(await rgb(rgba, 'cv2'), [255, 0, 255, 10, 20, 30]);
  const over = (c: number): number => Math.round((c * 128) / 255 + 255 * (1 - 128 / 255));
  assert.deepEqual(await rgb(rgba, 'oriented'), [255, 255, 255, over(10), over(20), over(30)]);
  const la = writePng({ width: 1, height: 1, colorType: 4, bitDepth: 8, samples: [50, 0] });
  assert.deepEqual(await rgb(la, 'pil'), [50, 50, 50]);
  assert.deepEqual(await rgb(la, 'oriented'), [255, 255, 255]);
});

test('gray of 1, 2 and 4 bits is scaled to 0..255 by every path', async () => {
  for (const [bitDepth, samples, expected] of [
    [1, [0, 1], [0, 255]],
    [2, [1, 3], [85, 255]],
    [4, [1, 15], [17, 255]],
  ] as const) {
    const png = writePng({ width: 2, height: 1, colorType: 0, bitDepth, samples });
    for (const path of ['pil', 'cv2', 'oriented'] as const)
      assert.deepEqual(
        await rgb(png, path),
        expected.flatMap((v) => [v, v, v]),
        `${bitDepth} bits ${path}`,
      );
  }
});

test('Adam7-interlaced PNG decodes to the same samples as the plain one', async () => {
  const raw = Buffer.from(Array.from({ length: 13 * 11 * 3 }, (_, i) => (i * 37) % 256));
  const interlaced = await sharp(raw, { raw: { width: 13, height: 11, channels: 3 } })
    .png({ progressive: true })
    .toBuffer();
  assert.equal(interlaced[28], 1, 'the test PNG is interlaced');
  assert.deepEqual([...decodePng(interlaced, 'i.png').samples], [...raw]);
});

test('EXIF orientation: Pillow ignores it, cv2.imread (JPEG) and ours apply it', async () => {
  // A 4x2 image with distinct quadrants, quality 100, then stored with Orientation 6 (rotate 90 clockwise).
  const raw = Buffer.from([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255].concat(new Array(24).fill(128)));
  const jpeg = await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } })
    .extract({ left: 0, top: 0, width: 4, height: 2 })
    .jpeg({ quality: 100 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const pil = await decodeRgb(jpeg, 'pil', 'r.jpg');
  const cv2 = await decodeRgb(jpeg, 'cv2', 'r.jpg');
  const ours = await decodeRgb(jpeg, 'oriented', 'r.jpg');
  assert.deepEqual([pil.width, pil.height], [4, 2]);
  assert.deepEqual([cv2.width, cv2.height], [2, 4]);
  assert.deepEqual(cv2, applyOrientation(pil, 6));
  assert.deepEqual(ours, cv2);
  // A PNG's eXIf: applied by ours only (OpenCV 4.6 reads EXIF from JPEG only).
  const png = writePng({ width: 2, height: 1, colorType: 0, bitDepth: 8, samples: [10, 200], orientation: 3 });
  assert.deepEqual(await rgb(png, 'pil'), [10, 10, 10, 200, 200, 200]);
  assert.deepEqual(await rgb(png, 'cv2'), [10, 10, 10, 200, 200, 200]);
  assert.deepEqual(await rgb(png, 'oriented'), [200, 200, 200, 10, 10, 10]);
});

test('applyOrientation: the eight EXIF orientations of a 3x2 image', () => {
  const img = { width: 3, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
  const expected: Record<number, [number, number, number[]]> = {
    1: [3, 2, [1, 2, 3, 4, 5, 6]],
    2: [3, 2, [3, 2, 1, 6, 5, 4]],
    3: [3, 2, [6, 5, 4, 3, 2, 1]],
    4: [3, 2, [4, 5, 6, 1, 2, 3]],
    5: [2, 3, [1, 4, 2, 5, 3, 6]],
    6: [2, 3, [4, 1, 5, 2, 6, 3]],
    7: [2, 3, [6, 3, 5, 2, 4, 1]],
    8: [2, 3, [3, 6, 2, 5, 1, 4]],
  };
  for (const [o, [w, h, data]] of Object.entries(expected)) {
    const r = applyOrientation(img, Number(o));
    assert.deepEqual([r.width, r.height, [...r.data]], [w, h, data], `orientation ${o}`);
  }
});

test('bad PNGs are refused with an ImageError naming the file and the fault', async () => {
  const good = writePng({ width: 2, height: 2, colorType: 2, bitDepth: 8, samples: new Array(12).fill(7) });
  const fails = async (bytes: Buffer, message: RegExp): Promise<void> => {
    await assert.rejects(decodeRgb(bytes, 'pil', '/x/bad.png'), (e: unknown) => e instanceof ImageError && message.test(e.message));
  };
  await fails(good.subarray(0, good.length - 20), /^\/x\/bad\.png: PNG (file is truncated|image data cannot be decompressed)/);
  const badCrc = Buffer.from(good);
  badCrc[20] = badCrc[20]! ^ 0xff; // inside IHDR
  await fails(badCrc, /^\/x\/bad\.png: PNG chunk IHDR at offset 8 has a bad CRC \(corrupt file\)$/);
  const palette = writePng({ width: 2, height: 1, colorType: 3, bitDepth: 8, samples: [0, 5], palette: [1, 2, 3] });
  await fails(palette, /^\/x\/bad\.png: PNG pixel uses palette index 5 but the palette has 1 entries$/);
  const noPalette = writePng({ width: 1, height: 1, colorType: 3, bitDepth: 8, samples: [0] });
  await fails(noPalette, /^\/x\/bad\.png: PNG palette image has no PLTE chunk$/);
  const depth = writePng({ width: 1, height: 1, colorType: 2, bitDepth: 4, samples: [1, 2, 3] });
  await fails(depth, /^\/x\/bad\.png: PNG bit depth 4 is not allowed for colour type 2$/);
  await assert.rejects(
    decodeRgb(Buffer.from('hello, not an image'), 'cv2', '/x/a.txt'),
    (e: unknown) => e instanceof ImageError && /^\/x\/a\.txt: not a readable image/.test(e.message),
  );
});
