import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { correspondencePng, gridPng } from '../../src/io/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';

function grey(width: number, height: number, value = 0): Tensor<'float32'> {
  return { dtype: 'float32', dims: [1, 3, height, width], data: new Float32Array(3 * width * height).fill(value) };
}

/** Per column of the rows [top, bottom): whether any pixel is darker than white (ink). */
async function inkColumns(png: Buffer, top: number, bottom: number): Promise<boolean[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const ink = new Array<boolean>(info.width).fill(false);
  for (let y = top; y < bottom; y++) {
    for (let x = 0; x < info.width; x++) {
      const p = (y * info.width + x) * info.channels;
      if (data[p]! < 200 || data[p + 1]! < 200 || data[p + 2]! < 200) ink[x] = true;
    }
  }
  return ink;
}

/** Each panel's strip has ink, and none reaches its panel's edges (labels do not run into each other). */
function assertLabelsApart(ink: boolean[], panelWidth: number, panels: number): void {
  for (let p = 0; p < panels; p++) {
    const cols = ink.slice(p * panelWidth, (p + 1) * panelWidth);
    assert.ok(cols.some(Boolean), `panel ${p} has a label`);
    assert.deepEqual([cols[0], cols[1], cols.at(-2), cols.at(-1)], [false, false, false, false], `panel ${p}'s label stays inside its panel`);
  }
}

test('grid.png at 64 px: every caption fits under its own panel', async () => {
  const png = await gridPng([
    { image: grey(64, 64), label: 'structure' },
    { image: grey(64, 64), label: 'appearance' },
    { image: grey(64, 64), label: 'result' },
  ]);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [192, 88]);
  assertLabelsApart(await inkColumns(png, 64, 88), 64, 3);
});

test('grid.png at 512 px keeps 14 px captions', async () => {
  const png = await gridPng([
    { image: grey(512, 64), label: 'structure' },
    { image: grey(512, 64), label: 'appearance' },
  ]);
  const ink = await inkColumns(png, 64, 88);
  const width = ink.slice(512).lastIndexOf(true) - ink.slice(512).indexOf(true);
  assert.ok(width > 60 && width < 90, `'appearance' at 14 px is about 75 px wide, got ${width}`);
});

test('correspondence.png: a label strip names the result and the appearance panels', async () => {
  const matches = { width: 2, height: 2, indices: [0, 1, 2, 3] };
  const png = await correspondencePng(grey(64, 64, 0.5), grey(64, 64, 0.5), matches);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 88]);
  assertLabelsApart(await inkColumns(png, 64, 88), 64, 2);
});
