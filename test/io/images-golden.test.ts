import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runGolden } from '../../src/golden/runner.js';
import { decodePng } from '../../src/io/png.js';
import { pilArray } from '../../src/io/decode.js';
import { fixturesDir, sd1TinyDir } from '../helpers/paths.js';
import { readGoldenTensor } from '../helpers/read-golden-tensor.js';

const subsetDir = join(fixturesDir, 'golden', 'images');
const fullDir = '/work/shared/golden/images';
const tmp = mkdtempSync(join(tmpdir(), 'e4e-images-golden-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('golden images (fixture subset, no model/): every output tensor passes, uint8 exactly', async () => {
  assert.equal(existsSync(join(subsetDir, 'model')), false);
  const report = await runGolden(subsetDir);
  assert.deepEqual(
    report.groups.map((g) => g.group),
    ['images'],
  );
  const comparisons = report.groups[0]!.comparisons;
  // 8 images x (rgb, cv2_decoded, sd_64) + 2 sd_96x160 + 1 sam_512.
  assert.equal(comparisons.length, 27);
  for (const c of comparisons) {
    assert.ok(c.ok, `${c.label}: ${c.shapeError ?? `max diff ${c.maxAbs}`}`);
    // PNG-derived tensors are exact; the JPEG ones are allowed atol 6 by io.json and are exact with sharp's libjpeg.
    assert.equal(c.maxAbs, 0, c.label);
  }
  assert.ok(report.ok);
  // The diagnostics are computed too (for --save) and equal the golden ones.
  const decoded = report.computed['images.gray16_I16_100x80.pil_decoded'];
  assert.equal(decoded?.dtype, 'int32');
  assert.deepEqual([...(decoded.data as Int32Array)], [...readGoldenTensor('images.gray16_I16_100x80.pil_decoded', join(subsetDir, 'io.safetensors')).data]);
});

test('golden images: the whole shared case passes', { skip: existsSync(join(fullDir, 'io.json')) ? false : `${fullDir} is not on this machine` }, async () => {
  const report = await runGolden(fullDir);
  const failing = report.groups.flatMap((g) => [g.error ?? '', ...g.comparisons.filter((c) => !c.ok).map((c) => c.label)]).filter((s) => s !== '');
  assert.deepEqual(failing, []);
  assert.ok(report.ok);
});

test('our PNG decoder gives what Image.open holds (mode-native pil_decoded, palette) for every PNG of the subset', () => {
  const io = JSON.parse(readFileSync(join(subsetDir, 'io.json'), 'utf8')) as { images: Record<string, { file: string }>; tensors: Record<string, unknown> };
  let checked = 0;
  for (const [image, { file }] of Object.entries(io.images)) {
    if (!file.endsWith('.png') || !(`images.${image}.pil_decoded` in io.tensors)) continue;
    const png = decodePng(readFileSync(join(subsetDir, file)), file);
    const ours = pilArray(png);
    const golden = readGoldenTensor(`images.${image}.pil_decoded`, join(subsetDir, 'io.safetensors'));
    assert.deepEqual(ours.dims, golden.dims, image);
    assert.deepEqual([...ours.data], [...golden.data], image);
    if (png.colorType === 3) assert.deepEqual([...png.palette!], [...readGoldenTensor(`images.${image}.pil_palette`, join(subsetDir, 'io.safetensors')).data]);
    checked++;
  }
  assert.equal(checked, 6);
});

test('golden images: a missing image file entry or a size that disagrees with the shape fails that tensor, naming it', async () => {
  const dir = mkdtempSync(join(tmp, 'case-'));
  cpSync(subsetDir, dir, { recursive: true });
  const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8')) as Record<string, Record<string, Record<string, unknown>>>;
  delete io['images']!['tiny_1x1']!['file'];
  io['sizes']!['sd_64'] = { W: 64, H: 32 };
  writeFileSync(join(dir, 'io.json'), JSON.stringify(io));
  const report = await runGolden(dir);
  const byLabel = new Map(report.groups[0]!.comparisons.map((c) => [c.label, c]));
  assert.equal(
    byLabel.get('images.tiny_1x1.rgb')?.shapeError,
    `not computed: ${dir}: io.json has no images.tiny_1x1.file (the image file of the tensors images.tiny_1x1.*)`,
  );
  assert.equal(
    byLabel.get('images.rgba_160x120.sd_64')?.shapeError,
    "not computed: io.json sizes.sd_64 is 64x32 (W x H) but the tensor's shape is [64, 64, 3]",
  );
  assert.equal(byLabel.get('images.rgba_160x120.rgb')?.ok, true);
  assert.equal(report.ok, false);
});

test('a golden case without model/ loads; a group that needs the model fails saying model/ is missing', async () => {
  const dir = mkdtempSync(join(tmp, 'nomodel-'));
  cpSync(join(sd1TinyDir, 'io.safetensors'), join(dir, 'io.safetensors'));
  const io = JSON.parse(readFileSync(join(sd1TinyDir, 'io.json'), 'utf8')) as Record<string, unknown>;
  const tensors = io['tensors'] as Record<string, unknown>;
  io['tensors'] = Object.fromEntries(Object.entries(tensors).filter(([name]) => name.startsWith('text.')));
  writeFileSync(join(dir, 'io.json'), JSON.stringify(io));
  const report = await runGolden(dir);
  assert.equal(report.groups.length, 1);
  assert.equal(
    report.groups[0]!.error,
    `${dir}: golden case has no model/, which this group needs\n  hint: a golden case holds io.json, io.safetensors and model/`,
  );
  assert.equal(report.ok, false);
});
