import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { AbortError, ImageError } from '../../src/errors.js';
import { validateTransferOptions } from '../../src/pipeline/options.js';
import { loadPipeline, prepareTransferInputs, sameAspect, type ProgressEvent, type TransferPipeline } from '../../src/pipeline/pipeline.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const structure = join(repoRoot, 'examples', 'bird-blue.png');
const appearance = join(repoRoot, 'examples', 'bird-red.png');
const FAST = { domain: 'bird', size: 128, numSteps: 6, skip: 2, featRange: [1, 5] as const, adainRange: [2, 6] as const };

let cacheDir: string;
let pipeline: TransferPipeline;

before(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'e4e-pipeline-'));
  pipeline = await loadPipeline(sd1TinyModelDir, { cacheDir });
});

after(async () => {
  await pipeline.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

test('transfer: image, png, matches, timings, progress; a second run reuses the inversions and gives the same image', async () => {
  const events: ProgressEvent[] = [];
  const first = await pipeline.transfer({ structure, appearance }, FAST, { onProgress: (e) => events.push(e) });
  assert.deepEqual(pipeline.model.openSessions, [], 'after a transfer no session is held (each released once the transfer no longer needs it)');
  assert.deepEqual(first.image.dims, [1, 3, 128, 128]);
  assert.ok(first.image.data.every((v) => v >= -1 && v <= 1));
  const meta = await sharp(first.png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 128, 128]);
  assert.deepEqual(first.metadata.workingSize, { width: 128, height: 128 });
  assert.deepEqual(first.metadata.latentSize, { width: 16, height: 16 });
  assert.equal(first.metadata.options.prompt, 'A photo of a bird');
  assert.deepEqual(first.metadata.inversionCache, { app: 'miss', struct: 'miss', dir: cacheDir });
  for (const key of ['load', 'encode', 'text', 'inversion-app', 'inversion-struct', 'transfer', 'decode', 'total'])
    assert.equal(typeof first.timings[key], 'number', key);
  // Matches of the finest hooked layer (16x16 tokens at a 16x16 latent) at the last matching iteration.
  assert.ok(first.matches !== undefined);
  assert.equal(first.matches.site, 'up_blocks.3.attentions.2.transformer_blocks.0.attn1');
  assert.deepEqual([first.matches.width, first.matches.height, first.matches.indices.length], [16, 16, 256]);
  assert.equal(first.matches.iteration, 3); // iterations 0..3 see steps 0,0,1,2; step 0 is outside [1, 5)
  // Progress: phases in order, steps counting up to their totals.
  const phases = [...new Set(events.map((e) => e.phase))];
  assert.deepEqual(phases, ['inversion-app', 'inversion-struct', 'transfer', 'decode']);
  assert.deepEqual(
    events.filter((e) => e.phase === 'inversion-app').map((e) => e.step),
    [1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual(
    events.filter((e) => e.phase === 'transfer').map((e) => [e.step, e.total]),
    [
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ],
  );
  assert.ok(events.every((e) => e.etaSeconds === undefined || e.etaSeconds >= 0));
  assert.equal(readdirSync(join(cacheDir, 'inversions')).filter((f) => f.endsWith('.safetensors')).length, 2);

  const again: ProgressEvent[] = [];
  const second = await pipeline.transfer({ structure: readFileSync(structure), appearance: readFileSync(appearance) }, FAST, {
    onProgress: (e) => again.push(e),
  });
  assert.deepEqual(second.metadata.inversionCache, { app: 'hit', struct: 'hit', dir: cacheDir });
  assert.deepEqual(
    again.filter((e) => e.phase.startsWith('inversion')).map((e) => e.cached),
    [true, true],
  );
  assert.deepEqual(second.image.data, first.image.data);

  const reseeded = await pipeline.transfer({ structure, appearance }, { ...FAST, seed: 7 });
  assert.deepEqual(reseeded.metadata.inversionCache, { app: 'miss', struct: 'miss', dir: cacheDir });
  assert.notDeepEqual(reseeded.image.data, first.image.data);
});

test('transfer: a non-square structure image keeps its aspect at the working size', async () => {
  const wide = await sharp(structure).resize(300, 150, { fit: 'fill' }).png().toBuffer();
  const wideMask = await sharp(join(repoRoot, 'examples', 'bird-blue-mask.png'))
    .resize(300, 150, { fit: 'fill' })
    .png()
    .toBuffer();
  const out = await pipeline.transfer({ structure: wide, appearance }, { ...FAST, structureMask: wideMask });
  assert.deepEqual(out.image.dims, [1, 3, 128, 256]);
  assert.deepEqual(out.metadata.latentSize, { width: 32, height: 16 });
  assert.deepEqual(out.structureMask?.dims, [128, 256]);
  assert.deepEqual([out.matches?.width, out.matches?.height], [32, 16]);
});

test('transfer: an aborted signal stops the run with AbortError', async () => {
  const controller = new AbortController();
  const run = pipeline.transfer(
    { structure, appearance },
    { ...FAST, seed: 99 },
    {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.phase === 'inversion-app' && e.step === 2) controller.abort();
      },
    },
  );
  await assert.rejects(run, (e: unknown) => e instanceof AbortError && e.code === 'E_ABORTED');
});

test('transfer: forced matches replace the argmax (all token 0, all keep-own); a wrong length is an error', async () => {
  const natural = await pipeline.transfer({ structure, appearance }, FAST);
  const site = natural.matches!.site;
  // Force every out token of every hooked layer to take appearance token 0: the result must change.
  const zeros = await pipeline.transfer({ structure, appearance, forcedMatches: (_i, s) => new BigInt64Array(s.startsWith('up_blocks.3') ? 256 : 64) }, FAST);
  assert.notDeepEqual(zeros.image.data, natural.image.data);
  assert.ok(Array.from(zeros.matches!.indices, Number).every((v) => v === 0));
  // Keep-own (-1) everywhere = no feature matching at all; it differs from the natural run too.
  const keep = await pipeline.transfer(
    { structure, appearance, forcedMatches: (_i, s) => new BigInt64Array(s.startsWith('up_blocks.3') ? 256 : 64).fill(-1n) },
    FAST,
  );
  assert.ok(Array.from(keep.matches!.indices, Number).every((v) => v === -1));
  assert.notDeepEqual(keep.image.data, natural.image.data);
  await assert.rejects(
    pipeline.transfer({ structure, appearance, forcedMatches: () => new BigInt64Array(3) }, FAST),
    new RegExp(`forcedMatches\\(2, 'up_blocks\\.2\\.attentions\\.0\\.transformer_blocks\\.0\\.attn1'\\) gave 3 indices; that layer has 64 tokens`),
  );
  assert.equal(site, 'up_blocks.3.attentions.2.transformer_blocks.0.attn1');
});

test('loadPipeline: threads and the memory arena are passed to onnxruntime; bad thread counts are rejected', async () => {
  const own = await loadPipeline(sd1TinyModelDir, { cacheDir, threads: 1, memoryArena: true });
  try {
    const result = await own.transfer({ structure, appearance }, FAST);
    assert.deepEqual(result.image.dims, [1, 3, 128, 128]);
  } finally {
    await own.dispose();
  }
  await assert.rejects(
    loadPipeline(sd1TinyModelDir, { cacheDir, threads: 0 }),
    /Expected integer between 1 and 1024 for threads but received 0 of type number/,
  );
});

test('prepareTransferInputs: a mask of another aspect than its image is an error naming both sizes; a scaled copy is resized', async () => {
  const options = validateTransferOptions(FAST);
  const maskFile = join(repoRoot, 'examples', 'bird-blue-mask.png');
  const tall = await sharp(maskFile).resize(200, 300, { fit: 'fill' }).png().toBuffer();
  await assert.rejects(
    prepareTransferInputs({ structure, appearance }, { ...options, structureMask: tall }),
    (e: unknown) =>
      e instanceof ImageError &&
      e.message ===
        `the structure mask buffer: the structure mask is 200x300 but the structure image ${structure} is 512x512; a mask must have its image's aspect ratio\n  hint: use a mask drawn on the structure image (the same size, or the same picture scaled)`,
  );
  // Half the size, same aspect: accepted, and resized to the working size like its image.
  const half = await sharp(maskFile).resize(256, 256).png().toBuffer();
  const ready = await prepareTransferInputs({ structure, appearance }, { ...options, appearanceMask: half });
  assert.deepEqual(ready.appearanceMask?.dims, [128, 128]);
  assert.deepEqual(ready.size, { width: 128, height: 128 });
  assert.ok(sameAspect({ width: 511, height: 512 }, { width: 512, height: 512 }));
  assert.ok(!sameAspect({ width: 500, height: 512 }, { width: 512, height: 512 }));
});
