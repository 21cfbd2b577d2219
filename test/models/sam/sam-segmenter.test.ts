/**
 * SamSegmenter on the samhq-tiny model: the embedding cache (a second prompt runs only the decoder), results equal to
 * the golden predictor's for the same image and prompt, the official default box, and every bad input's error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectClose } from '../../../src/golden/compare.js';
import { loadGoldenCase, type GoldenCase } from '../../../src/golden/golden-case.js';
import type { Raster } from '../../../src/io/resample/raster.js';
import { requireNonEmpty, SamSegmenter } from '../../../src/pipeline/sam-segmenter.js';
import type { Tensor } from '../../../src/tensor/tensor.js';
import { fixturesDir } from '../../helpers/paths.js';

const caseDir = join(fixturesDir, 'golden', 'samhq-tiny');
const modelDir = join(caseDir, 'model');
const tmp = mkdtempSync(join(tmpdir(), 'e4e-sam-segmenter-'));
const cacheDir = join(tmp, 'cache');
let golden: GoldenCase;
let sam: SamSegmenter;

function raster(name: string): Raster {
  const t = golden.get(name);
  return { width: t.dims[1]!, height: t.dims[0]!, channels: 3, data: t.data as Uint8Array };
}

const TOL = { atol: 1e-4, rtol: 1e-3 };

before(() => {
  golden = loadGoldenCase(caseDir);
  sam = SamSegmenter.open(modelDir, { cacheDir });
});
after(async () => {
  await sam.close();
  golden.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('a second prompt on the same image reuses the embedding; another image is encoded', async () => {
  const image = raster('samhq.image0.resized');
  const before = sam.encoderRuns;
  const box = await sam.segment(image, { box: [20, 15, 47, 50] });
  const points = await sam.segment(image, {
    points: [
      { x: 34, y: 33, label: 1 },
      { x: 9, y: 9, label: 0 },
    ],
  });
  assert.equal(sam.encoderRuns - before, 1);
  // A copy of the same pixels is the same content.
  await sam.segment({ ...image, data: Uint8Array.from(image.data) }, { box: [20, 15, 47, 50] });
  assert.equal(sam.encoderRuns - before, 1);
  await sam.segment(raster('samhq.image1.resized'), {});
  assert.equal(sam.encoderRuns - before, 2);

  for (const [result, prompt] of [
    [box, 'box_user'],
    [points, 'points'],
  ] as const) {
    const pre = `samhq.image0.${prompt}`;
    assert.equal(result.width, 64);
    assert.equal(result.height, 64);
    expectClose({ dtype: 'float32', dims: [1, 64, 64], data: result.logits }, golden.get(`${pre}.upscaled_logits`), { ...TOL, label: `${pre} logits` });
    expectClose({ dtype: 'float32', dims: [1], data: Float32Array.of(result.score) }, golden.get(`${pre}.iou_predictions`), { ...TOL, label: `${pre} score` });
    const expected = golden.get(`${pre}.masks`).data as Uint8Array;
    const differing = [...result.mask].filter((v, i) => v !== expected[i]).length;
    assert.ok(differing <= 1, `${pre}: ${differing} mask pixels differ (io.json lists at most 1 fragile pixel)`);
  }
});

test('no box and no points: the whole-image box, as run.py; maskInput refines; multimask and hq_token_only as predict()', async () => {
  const image = raster('samhq.image2.resized');
  const whole = await sam.segment(image);
  expectClose({ dtype: 'float32', dims: [1, 64, 64], data: whole.logits }, golden.get('samhq.image2.box_full.upscaled_logits'), { ...TOL, label: 'box_full' });
  const user = await sam.segment(image, { box: [17, 15, 37, 59] });
  const refined = await sam.segment(image, { box: [17, 15, 37, 59], maskInput: user.lowResLogits });
  expectClose({ dtype: 'float32', dims: [1, 64, 64], data: refined.logits }, golden.get('samhq.image2.box_refine.upscaled_logits'), {
    ...TOL,
    label: 'box_refine',
  });
  const multi = await sam.segment(image, {
    points: [
      { x: 27, y: 37, label: 1 },
      { x: 51, y: 9, label: 0 },
    ],
    multimaskOutput: true,
    hqTokenOnly: false,
  });
  expectClose({ dtype: 'float32', dims: [1, 64, 64], data: multi.logits }, golden.get('samhq.image2.points_multi.upscaled_logits'), {
    ...TOL,
    label: 'points_multi',
  });
  const low = multi.lowResLogits;
  expectClose({ dtype: 'float32', dims: low.dims.slice(1), data: low.data }, golden.get('samhq.image2.points_multi.low_res_logits'), {
    ...TOL,
    label: 'points_multi low',
  });
});

test('bad prompts: box outside or degenerate, points outside, labels, mask input', async () => {
  const image = raster('samhq.image0.resized');
  await assert.rejects(sam.segment(image, { box: [10, 10, 65, 40] }), /box \[10, 10, 65, 40\] is outside the 64x64 image/);
  await assert.rejects(sam.segment(image, { box: [-1, 0, 20, 20] }), /box \[-1, 0, 20, 20\] is outside the 64x64 image/);
  await assert.rejects(sam.segment(image, { box: [30, 10, 30, 40] }), /box \[30, 10, 30, 40\] is degenerate: it needs x0 < x1 and y0 < y1/);
  await assert.rejects(sam.segment(image, { box: [10, 40, 30, 20] }), /is degenerate/);
  await assert.rejects(sam.segment(image, { box: [0, 0, Number.NaN, 4] as unknown as [number, number, number, number] }), /Expected four finite numbers/);
  await assert.rejects(sam.segment(image, { points: [{ x: 70, y: 3, label: 1 }] }), /point 0 \(70, 3\) is outside the 64x64 image/);
  await assert.rejects(
    sam.segment(image, { points: [{ x: 3, y: 3, label: 2 as 1 }] }),
    /Expected 1 \(foreground\) or 0 \(background\) for points\[0\]\.label but received 2/,
  );
  const wrong: Tensor<'float32'> = { dtype: 'float32', dims: [1, 1, 16, 16], data: new Float32Array(256) };
  await assert.rejects(
    sam.segment(image, { maskInput: wrong }),
    /maskInput must be the 32x32 low-res logits of an earlier result, got float32\[1, 1, 16, 16\]/,
  );
});

test('requireNonEmpty refuses an empty mask and names what it was for', () => {
  const empty = { mask: new Uint8Array(12), width: 4, height: 3 };
  assert.throws(
    () => requireNonEmpty(empty, 'the structure image'),
    /the predicted mask of the structure image is empty \(no pixel of the 4x3 image selected\)/,
  );
  const one = { mask: Uint8Array.from({ length: 12 }, (_, i) => (i === 5 ? 1 : 0)), width: 4, height: 3 };
  assert.doesNotThrow(() => requireNonEmpty(one, 'x'));
});

/** A copy of the tiny model whose config.json is edited. */
function editedModel(name: string, edit: (config: Record<string, Record<string, unknown>>) => void): string {
  const dir = join(tmp, name);
  cpSync(modelDir, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

test('a config that does not match the weights: the tensor and both shapes are named when the weights are opened', () => {
  const cases: [string, (c: Record<string, Record<string, unknown>>) => void, RegExp][] = [
    [
      'vision-width',
      (c) => {
        c['vision_config']!['mlp_dim'] = 96;
      },
      /vision_encoder\.layers\.\d\.mlp\.lin1\.(weight|bias): expected \[96(, 32)?\], got \[128(, 32)?\]/,
    ],
    [
      'decoder-mlp',
      (c) => {
        c['mask_decoder_config']!['mlp_dim'] = 80;
      },
      /mask_decoder\.transformer\.layers\.\d\.mlp\.lin1\.(weight|bias): expected \[80(, 32)?\], got \[64(, 32)?\]/,
    ],
    [
      'fewer-layers',
      (c) => {
        c['vision_config']!['num_hidden_layers'] = 3;
        c['vision_config']!['global_attn_indexes'] = [1];
      },
      /weight vision_encoder\.layers\.3\.\S+ is not part of the SAM-HQ model the config describes/,
    ],
  ];
  for (const [name, edit, message] of cases) assert.throws(() => SamSegmenter.open(editedModel(name, edit), { cacheDir }), message);
});
