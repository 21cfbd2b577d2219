/**
 * `eye4eye transfer` with SAM-HQ masks (tiny SD + tiny SAM-HQ): boxes and points per image, `--masks sam` (the
 * whole-image box, as the official run), the official frame under --fit stretch, and the bad inputs, all failing
 * before the Stable Diffusion model is opened and leaving nothing behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runTransferCommand } from '../../src/cli/transfer-command.js';
import { maskRasterToTensor, maskToPng } from '../../src/io/image.js';
import { samMask, type MaskPrompt } from '../../src/pipeline/sam-masks.js';
import { SamSegmenter } from '../../src/pipeline/sam-segmenter.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { Fit } from '../../src/io/fit.js';
import { writeEmptyMaskSamModel } from '../helpers/sam.js';
import { repoRoot, samTinyModelDir, sd1TinyModelDir } from '../helpers/paths.js';

const examples = join(repoRoot, 'examples');
const blue = join(examples, 'bird-blue.png');
const red = join(examples, 'bird-red.png');
let root: string;
let segmenter: SamSegmenter;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-transfer-sam-'));
  segmenter = SamSegmenter.open(samTinyModelDir, { cacheDir: join(root, 'cache') });
});

after(async () => {
  await segmenter.close();
  rmSync(root, { recursive: true, force: true });
});

async function cli(out: string, extra: readonly string[], sam = samTinyModelDir): Promise<{ code: number; out: string; err: string }> {
  let stdout = '';
  let err = '';
  const args = [
    ...['--structure', blue, '--appearance', red, '--domain', 'bird', '--model', sd1TinyModelDir],
    ...['--size', '128', '--steps', '6', '--skip', '2', '--feat-range', '1,5', '--adain-range', '2,6'],
    ...['--cache-dir', join(root, 'cache'), '--out', out, '--sam-model', sam],
    ...extra,
  ];
  const code = await runTransferCommand(args, {
    out: (s) => {
      stdout += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out: stdout, err };
}

/** The mask the run should have used: SAM-HQ on the image, brought to the 128x128 working size like the image. */
async function expectedMaskPng(image: string, prompt: MaskPrompt, fit: Fit = 'cover'): Promise<Buffer> {
  const m = await samMask(segmenter, image, prompt, fit, image);
  const tensor: Tensor<'float32'> = maskRasterToTensor(m.mask, { width: 128, height: 128 }, fit, image);
  return sharp(await maskToPng(tensor))
    .raw()
    .toBuffer();
}

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).raw().toBuffer();
}

test('--structure-box and --appearance-point: each image gets its SAM-HQ mask, written and recorded in run.json', async () => {
  const out = join(root, 'boxes');
  const r = await cli(out, ['--structure-box', '100,100,400,400', '--appearance-point', '250,250,1', '--appearance-point', '20,500,0']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await pixels(join(out, 'mask-structure.png')), await expectedMaskPng(blue, { box: [100, 100, 400, 400] }));
  const points = [
    { x: 250, y: 250, label: 1 as const },
    { x: 20, y: 500, label: 0 as const },
  ];
  assert.deepEqual(await pixels(join(out, 'mask-appearance.png')), await expectedMaskPng(red, { points }));
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.deepEqual(run.options.structureBox, [100, 100, 400, 400]);
  assert.deepEqual(run.options.appearancePoints, points);
  assert.equal(typeof run.timings.masks, 'number');
});

test('--masks sam: every image without a mask file gets the whole-image box (the official default); --fit stretch uses the official frame', async () => {
  const out = join(root, 'auto');
  const r = await cli(out, ['--masks', 'sam', '--appearance-mask', join(examples, 'bird-red-mask.png')]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await pixels(join(out, 'mask-structure.png')), await expectedMaskPng(blue, {}));
  const given = await sharp(join(examples, 'bird-red-mask.png')).metadata();
  assert.ok(given.width === 512, 'the appearance mask file is used as given');

  const wide = join(root, 'wide.png');
  await sharp(blue).resize(300, 200, { fit: 'fill' }).png().toFile(wide);
  const stretched = join(root, 'stretch');
  let stdout = '';
  let err = '';
  const code = await runTransferCommand(
    [
      ...['--structure', wide, '--appearance', red, '--domain', 'bird', '--model', sd1TinyModelDir, '--fit', 'stretch'],
      ...['--size', '128', '--steps', '6', '--skip', '2', '--feat-range', '1,5', '--adain-range', '2,6'],
      ...['--cache-dir', join(root, 'cache'), '--out', stretched, '--sam-model', samTinyModelDir, '--structure-box', '30,20,240,180'],
    ],
    {
      out: (s) => {
        stdout += s;
      },
      err: (s) => {
        err += s;
      },
    },
  );
  assert.equal(code, 0, err);
  assert.match(stdout, /result\.png/);
  assert.deepEqual(await pixels(join(stretched, 'mask-structure.png')), await expectedMaskPng(wide, { box: [30, 20, 240, 180] }, 'stretch'));
});

test('bad SAM-HQ inputs are errors naming the flag and the image, before any model work; nothing is written', async () => {
  const cases: [string[], number, RegExp][] = [
    [
      ['--structure-box', '100,100,600,400'],
      2,
      /^eye4eye transfer: --structure-box: box \[100, 100, 600, 400\] is outside the 512x512 image \(x in \[0, 512\], y in \[0, 512\]\) \(structure image .*bird-blue\.png\)\n/,
    ],
    [['--appearance-box', '50,50,20,80'], 2, /^eye4eye transfer: --appearance-box: Expected a box with x0 < x1 and y0 < y1 /],
    [['--structure-point', '600,10,1'], 2, /^eye4eye transfer: --structure-point: point 0 \(600, 10\) is outside the 512x512 image \(structure image /],
    [['--structure-point', '6,10,3'], 2, /^eye4eye transfer: --structure-point: the label of '6,10,3' must be 1 \(object\) or 0 \(background\)/],
    [
      ['--structure-box', '1,1,50,50', '--structure-mask', join(examples, 'bird-blue-mask.png')],
      2,
      /^eye4eye transfer: --structure-box: Expected no prompt when a structure mask file is given/,
    ],
    [
      ['--structure-box', '1,1,50,50', '--masks', 'self-segmentation'],
      2,
      /^eye4eye transfer: --masks: Expected 'given' or 'sam' when SAM-HQ prompts are given/,
    ],
  ];
  for (const [extra, code, message] of cases) {
    const out = join(root, 'bad');
    const r = await cli(out, extra);
    assert.equal(r.code, code, `${extra.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /building|inversion/);
    assert.ok(!existsSync(out), `${extra.join(' ')} left ${out}`);
  }
  // --sam-model with nothing to segment is a usage error, not a silent no-op.
  let err = '';
  const code = await runTransferCommand(
    ['--structure', blue, '--appearance', red, '--domain', 'bird', '--model', sd1TinyModelDir, '--out', join(root, 'bad'), '--sam-model', samTinyModelDir],
    {
      out: () => {},
      err: (s) => {
        err += s;
      },
    },
  );
  assert.equal(code, 2);
  assert.match(err, /--sam-model: no image asks for a SAM-HQ mask/);
  assert.ok(!existsSync(join(root, 'bad')));
  // SAM-HQ weights that are missing are found out before Stable Diffusion loads.
  const missing = await cli(join(root, 'bad'), ['--structure-box', '1,1,50,50'], join(root, 'no-sam'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no-sam: SAM-HQ model not found/);
  assert.doesNotMatch(missing.err, /building/);
  assert.ok(!existsSync(join(root, 'bad')));
});

test('an empty SAM-HQ mask stops the transfer with a message naming the image; no output is left', async () => {
  const model = writeEmptyMaskSamModel(join(root, 'empty-sam'));
  const out = join(root, 'empty');
  const r = await cli(out, ['--structure-box', '100,100,400,400'], model);
  assert.equal(r.code, 1);
  assert.match(r.err, /the predicted mask of the structure image .*bird-blue\.png is empty \(no pixel of the 512x512 image selected\)/);
  assert.ok(!existsSync(out));
});
