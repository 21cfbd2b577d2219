/**
 * `eye4eye mask` on the tiny SAM-HQ model: the files it writes equal the library's masks (image frame for cover,
 * the official 512x512 cv2 stretch for --fit stretch), and every bad input is a clear error that writes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { main } from '../../src/cli/main.js';
import { decodeSamSource } from '../../src/io/image.js';
import { cv2ResizeLinear } from '../../src/io/resample/cv2.js';
import { SamSegmenter } from '../../src/pipeline/sam-segmenter.js';
import { op, checkpointZip } from '../helpers/torch-zip.js';
import { writeEmptyMaskSamModel } from '../helpers/sam.js';
import { repoRoot, samTinyModelDir } from '../helpers/paths.js';

const bird = join(repoRoot, 'examples', 'bird-blue.png');
let root: string;
let cacheDir: string;
let wide: string;
let segmenter: SamSegmenter;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'e4e-mask-'));
  cacheDir = join(root, 'cache');
  wide = join(root, 'wide.png');
  await sharp(bird).resize(300, 200, { fit: 'fill' }).png().toFile(wide);
  segmenter = SamSegmenter.open(samTinyModelDir, { cacheDir });
});

after(async () => {
  await segmenter.close();
  rmSync(root, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    ['mask', ...args, '--sam-model', samTinyModelDir, '--cache-dir', cacheDir],
    (s) => {
      out += s;
    },
    (s) => {
      err += s;
    },
  );
  return { code, out, err };
}

async function gray(file: string): Promise<{ width: number; height: number; data: Uint8Array }> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

test('a box and points: the mask (image size) equals the segmenter on the image, and an overlay is written next to it', async () => {
  const dir = join(root, 'a');
  mkdirSync(dir);
  const out = join(dir, 'bird-mask.png');
  const { code, out: stdout, err } = await cli(['--image', bird, '--box', '100,100,400,400', '--point', '250,250,1', '--point', '30,480,0', '--out', out]);
  assert.equal(code, 0, err);
  assert.equal(stdout, `${out}\n${join(dir, 'bird-mask-overlay.png')}\n`);
  assert.match(err, /^eye4eye mask: 512x512 mask, \d+\.\d % of the pixels, predicted IoU -?\d\.\d{3}\n$/);
  assert.deepEqual(readdirSync(dir).sort(), ['bird-mask-overlay.png', 'bird-mask.png']);
  const expected = await segmenter.segment(await decodeSamSource(bird), {
    box: [100, 100, 400, 400],
    points: [
      { x: 250, y: 250, label: 1 },
      { x: 30, y: 480, label: 0 },
    ],
  });
  const mask = await gray(out);
  assert.deepEqual([mask.width, mask.height], [512, 512]);
  assert.deepEqual(
    mask.data,
    Uint8Array.from(expected.mask, (v) => v * 255),
  );
  const overlay = await sharp(join(dir, 'bird-mask-overlay.png')).metadata();
  assert.deepEqual([overlay.width, overlay.height, overlay.channels], [512, 512, 3]);

  // Existing files are replaced only with --overwrite.
  const again = await cli(['--image', bird, '--out', out]);
  assert.equal(again.code, 2);
  assert.equal(again.err, `eye4eye mask: --out: ${out} exists; pass --overwrite to replace it\n  (see eye4eye mask --help)\n`);
  assert.equal((await cli(['--image', bird, '--out', out, '--overwrite'])).code, 0);
  const whole = await segmenter.segment(await decodeSamSource(bird), { box: [0, 0, 512, 512] });
  assert.deepEqual(
    (await gray(out)).data,
    Uint8Array.from(whole.mask, (v) => v * 255),
    'no prompt: the whole-image box',
  );
});

test('--fit stretch segments the official 512x512 cv2 stretch with the box scaled into it; cover keeps the image frame', async () => {
  const dir = join(root, 'b');
  mkdirSync(dir);
  const stretch = await cli(['--image', wide, '--box', '30,20,240,180', '--fit', 'stretch', '--out', join(dir, 'official.png')]);
  assert.equal(stretch.code, 0, stretch.err);
  const input = cv2ResizeLinear(await decodeSamSource(wide, { fit: 'stretch' }), 512, 512);
  const expected = await segmenter.segment(input, { box: [(30 * 512) / 300, (20 * 512) / 200, (240 * 512) / 300, (180 * 512) / 200] });
  const official = await gray(join(dir, 'official.png'));
  assert.deepEqual([official.width, official.height], [512, 512]);
  assert.deepEqual(
    official.data,
    Uint8Array.from(expected.mask, (v) => v * 255),
  );
  const cover = await cli(['--image', wide, '--box', '30,20,240,180', '--out', join(dir, 'cover.png')]);
  assert.equal(cover.code, 0, cover.err);
  const own = await gray(join(dir, 'cover.png'));
  assert.deepEqual([own.width, own.height], [300, 200]);
});

test('bad prompts and flags exit 2 naming the flag and the image, before any model work, and write nothing', async () => {
  const dir = join(root, 'c');
  mkdirSync(dir);
  const out = join(dir, 'm.png');
  const cases: [string[], string][] = [
    [['--box', '0,0,600,100'], `--box: box [0, 0, 600, 100] is outside the 512x512 image (x in [0, 512], y in [0, 512]) (${bird})`],
    [['--box', '50,50,50,80'], `--box: box [50, 50, 50, 80] is degenerate: it needs x0 < x1 and y0 < y1 (${bird})`],
    [['--point', '10,700,1'], `--point: point 0 (10, 700) is outside the 512x512 image (${bird})`],
    [['--point', '10,20'], `--point: expected x,y,L (L = 1 on the object, 0 on the background) but received '10,20'`],
    [['--point', '10,20,2'], `--point: the label of '10,20,2' must be 1 (object) or 0 (background)`],
    [['--box', '1,2,3'], `--box: expected x0,y0,x1,y1 (four numbers) but received '1,2,3'`],
    [['--fit', 'squash'], `--fit: expected one of stretch, cover, contain but received 'squash'`],
    [['--device', 'tpu'], `--device: expected one of cpu, cuda, webgpu but received 'tpu'`],
  ];
  for (const [extra, message] of cases) {
    const r = await cli(['--image', bird, '--out', out, ...extra]);
    assert.equal(r.code, 2, extra.join(' '));
    assert.equal(r.err, `eye4eye mask: ${message}\n  (see eye4eye mask --help)\n`);
  }
  // --out: a folder in place of the file, and a file in a folder that does not exist.
  const folder = await cli(['--image', bird, '--out', dir, '--overwrite']);
  assert.equal(folder.code, 2);
  assert.equal(folder.err, `eye4eye mask: --out: ${dir} is a folder; give a file name such as mask.png\n  (see eye4eye mask --help)\n`);
  const nowhere = await cli(['--image', bird, '--out', join(dir, 'no', 'm.png')]);
  assert.equal(nowhere.code, 2);
  assert.equal(nowhere.err, `eye4eye mask: --out: the folder ${join(dir, 'no')} does not exist\n  (see eye4eye mask --help)\n`);
  const missing = await cli(['--box', '1,2,3,4']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^eye4eye mask: missing required option --image/);
  const noFile = await cli(['--image', join(root, 'nope.png'), '--out', out]);
  assert.equal(noFile.code, 1);
  assert.match(noFile.err, /nope\.png: image file not found/);
  assert.deepEqual(readdirSync(dir), []);
});

test('an empty predicted mask is refused with a message saying so, and nothing is written', async () => {
  // hq_token_only: the mask is the HQ token's hypernetwork output . features; a zero hypernetwork gives logits 0, no pixel.
  const model = writeEmptyMaskSamModel(join(root, 'empty-model'));
  const dir = join(root, 'd');
  mkdirSync(dir);
  let err = '';
  const code = await main(
    ['mask', '--image', bird, '--out', join(dir, 'm.png'), '--sam-model', model, '--cache-dir', cacheDir],
    () => {},
    (s) => {
      err += s;
    },
  );
  assert.equal(code, 1);
  assert.equal(
    err,
    `eye4eye mask: InvalidParameterError [E_INVALID_PARAMETER]: the predicted mask of ${bird} is empty (no pixel of the 512x512 image selected)\n  hint: give a box or points around the object (or a mask file)\n`,
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('bad SAM weights: a .pth with a foreign global, a truncated .pth and a config that does not fit are errors naming them', async () => {
  const dir = join(root, 'e');
  mkdirSync(dir);
  const evil = join(dir, 'sam_hq_vit_l.pth');
  writeFileSync(evil, checkpointZip(Buffer.concat([op.proto(2), op.global('os', 'system'), op.mark, op.str('echo pwned'), op.tuple, op.reduce, op.stop]), {}));
  const run = async (model: string): Promise<{ code: number; err: string }> => {
    let err = '';
    const code = await main(
      ['mask', '--image', bird, '--out', join(dir, 'm.png'), '--sam-model', model, '--cache-dir', cacheDir],
      () => {},
      (s) => {
        err += s;
      },
    );
    return { code, err };
  };
  let r = await run(evil);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`${evil.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: refusing to load: data\\.pkl references global 'os\\.system'`));
  const half = join(dir, 'half.pth');
  const pth = readFileSync(join(samTinyModelDir, 'sam_hq_tiny.pth'));
  writeFileSync(half, pth.subarray(0, pth.length >> 1));
  r = await run(half);
  assert.equal(r.code, 1);
  assert.match(r.err, /half\.pth/);
  const wrong = join(dir, 'wrong-config');
  cpSync(samTinyModelDir, wrong, { recursive: true });
  const config = JSON.parse(readFileSync(join(wrong, 'config.json'), 'utf8')) as { vision_config: { num_hidden_layers: number } };
  config.vision_config.num_hidden_layers = 5;
  writeFileSync(join(wrong, 'config.json'), JSON.stringify(config));
  r = await run(wrong);
  assert.equal(r.code, 1);
  assert.match(r.err, /vision_encoder\.layers\.4\./);
  assert.ok(!existsSync(join(dir, 'm.png')) && !existsSync(join(dir, 'm-overlay.png')));
});
