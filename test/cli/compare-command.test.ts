/**
 * `eye4eye transfer --method cia` and `eye4eye compare` on the tiny model: the user path of Cross-Image Attention
 * reproduces the official output image of cia-tiny, and compare runs both methods from one inversion.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { COMPARE_HELP, runCompareCommand } from '../../src/cli/compare-command.js';
import { runTransferCommand } from '../../src/cli/transfer-command.js';
import { openTensorSource } from '../../src/io/safetensors.js';
import { fixturesDir, repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const examples = join(repoRoot, 'examples');
const ciaTiny = join(fixturesDir, 'golden', 'cia-tiny');
let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-compare-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

type Command = typeof runTransferCommand;

async function cli(command: Command, args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await command(args, { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false });
  return { code, out, err };
}

/** A uint8 HWC tensor of the case as PNG; returns its path. */
async function casePng(name: string, index = 0): Promise<{ path: string; pixels: Uint8Array }> {
  const source = openTensorSource(join(ciaTiny, 'io.safetensors'));
  const t = source.read(name);
  source.close();
  const [h, w, c] = t.dims.slice(-3) as [number, number, number];
  const pixels = (t.data as Uint8Array).slice(index * h * w * c, (index + 1) * h * w * c);
  const path = join(root, `${name}-${index}.png`);
  await sharp(Buffer.from(pixels), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
  return { path, pixels };
}

test('transfer --method cia with cia-tiny settings reproduces the official output image (self-segmentation masks, +-1)', async () => {
  const structure = await casePng('inputs.image_struct_uint8');
  const appearance = await casePng('inputs.image_app_uint8');
  const official = await casePng('cia_transfer.image_uint8', 0);
  const outDir = join(root, 'cia');
  const meta = JSON.parse(readFileSync(join(ciaTiny, 'io.json'), 'utf8')) as { run_config: Record<string, unknown> };
  const rc = meta.run_config;
  const range = (k: string): string => (rc[k] as number[]).join(',');
  const run = await cli(runTransferCommand, [
    ...['--method', 'cia', '--structure', structure.path, '--appearance', appearance.path, '--domain', String(rc['domain_name'])],
    ...['--model', sd1TinyModelDir, '--size', '128', '--steps', String(rc['num_timesteps']), '--skip', String(rc['skip_steps'])],
    ...['--cross-attn-32-range', range('cross_attn_32_range'), '--cross-attn-64-range', range('cross_attn_64_range'), '--adain-range', range('adain_range')],
    ...['--seed', String(rc['seed']), '--cache-dir', join(root, 'cache'), '--out', outDir],
  ]);
  assert.equal(run.code, 0, run.err);
  // the self-segmentation's masks are written like given ones: nearest-upscaled from the latent (16x16 -> 128x128)
  assert.deepEqual(readdirSync(outDir).sort(), ['grid.png', 'mask-appearance.png', 'mask-structure.png', 'result.png', 'run.json']);
  const source = openTensorSource(join(ciaTiny, 'io.safetensors'));
  for (const [file, name] of [
    ['mask-structure.png', 'segment.mask_struct_64'],
    ['mask-appearance.png', 'segment.mask_style_64'],
  ] as const) {
    const png = await sharp(join(outDir, file)).greyscale().raw().toBuffer();
    const golden = source.read(name).data as Uint8Array;
    const block = Array.from({ length: 256 }, (_, i) => (png[(Math.floor(i / 16) * 8 + 4) * 128 + (i % 16) * 8 + 4]! > 127 ? 1 : 0));
    assert.deepEqual(block, Array.from(golden), file);
  }
  source.close();
  const ours = await sharp(join(outDir, 'result.png')).raw().toBuffer();
  assert.equal(ours.length, official.pixels.length);
  let worst = 0;
  ours.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - official.pixels[i]!))));
  assert.ok(worst <= 1, `max |diff| ${worst} against the official out_transfer image`);
  const record = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
  assert.equal(record.options.method, 'cia');
  assert.equal(record.options.guidanceScale, 1);
  assert.equal(record.correspondence, null);
});

function compareArgs(outDir: string, extra: readonly string[] = []): string[] {
  return [
    ...['--structure', join(examples, 'bird-blue.png'), '--appearance', join(examples, 'bird-red.png'), '--domain', 'bird'],
    ...['--structure-mask', join(examples, 'bird-blue-mask.png'), '--appearance-mask', join(examples, 'bird-red-mask.png')],
    ...['--model', sd1TinyModelDir, '--size', '128', '--steps', '6', '--skip', '2', '--feat-range', '1,5', '--adain-range', '2,6'],
    ...['--cross-attn-32-range', '1,5', '--cross-attn-64-range', '1,6', '--cache-dir', join(root, 'cache-compare'), '--out', outDir],
    ...extra,
  ];
}

test('compare: one inversion, both methods, compare.png (4 panels) and each method folder with its run.json', async () => {
  const outDir = join(root, 'compare');
  const run = await cli(runCompareCommand, compareArgs(outDir));
  assert.equal(run.code, 0, run.err);
  assert.equal(run.out, `${join(outDir, 'compare.png')}\n`);
  // the inversion ran once; each method's loop and decode is reported under its name
  assert.equal(run.err.match(/^inversion-app: /gm)?.length, 1);
  assert.equal(run.err.match(/^inversion-struct: /gm)?.length, 1);
  assert.match(run.err, /^transfer \(eye-for-an-eye\): 4\/4 in /m);
  assert.match(run.err, /^transfer \(cia\): 4\/4 in /m);
  assert.deepEqual(readdirSync(outDir).sort(), ['cia', 'compare.png', 'eye-for-an-eye', 'run.json']);
  const m = await sharp(join(outDir, 'compare.png')).metadata();
  assert.deepEqual([m.width, m.height], [4 * 128, 128 + 24]);
  assert.deepEqual(readdirSync(join(outDir, 'eye-for-an-eye')).sort(), [
    'correspondence.png',
    'grid.png',
    'mask-appearance.png',
    'mask-structure.png',
    'result.png',
    'run.json',
  ]);
  assert.deepEqual(readdirSync(join(outDir, 'cia')).sort(), ['grid.png', 'mask-appearance.png', 'mask-structure.png', 'result.png', 'run.json']);
  const e4e = JSON.parse(readFileSync(join(outDir, 'eye-for-an-eye', 'run.json'), 'utf8'));
  const cia = JSON.parse(readFileSync(join(outDir, 'cia', 'run.json'), 'utf8'));
  assert.deepEqual([e4e.command, cia.command], ['compare', 'compare']);
  assert.deepEqual([e4e.options.method, cia.options.method], ['eye-for-an-eye', 'cia']);
  assert.deepEqual([e4e.options.guidanceScale, cia.options.guidanceScale], [2.5, 1]);
  // the same inversion (and its timings) for both
  assert.deepEqual([cia.cache.inversion, cia.cache.dir], [e4e.cache.inversion, e4e.cache.dir]);
  assert.equal(cia.timings['inversion-app'], e4e.timings['inversion-app']);
  // the panels are the runs' results
  const picture = await sharp(join(outDir, 'compare.png')).raw().toBuffer({ resolveWithObject: true });
  const panel = async (file: string, index: number): Promise<void> => {
    const own = await sharp(file).raw().toBuffer();
    const width = picture.info.width;
    for (const y of [0, 64, 127])
      for (const x of [0, 77, 127]) {
        const p = (y * width + index * 128 + x) * picture.info.channels;
        const q = (y * 128 + x) * 3;
        assert.deepEqual([...picture.data.subarray(p, p + 3)], [...own.subarray(q, q + 3)], `${file} at ${x},${y}`);
      }
  };
  await panel(join(outDir, 'eye-for-an-eye', 'result.png'), 2);
  await panel(join(outDir, 'cia', 'result.png'), 3);
  const top = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
  assert.deepEqual(top.outputs, ['compare.png', 'eye-for-an-eye', 'cia', 'run.json']);
  assert.deepEqual(top.runs, { 'eye-for-an-eye': 'eye-for-an-eye/run.json', cia: 'cia/run.json' });

  // The folder holds an earlier compare run now: refused before computing without --overwrite, replaced with it.
  const again = await cli(runCompareCommand, compareArgs(outDir));
  assert.equal(again.code, 1);
  assert.match(again.err, /the output folder holds an earlier run \(cia, compare\.png, eye-for-an-eye, run\.json\)\n  hint: pass --overwrite/);
  assert.doesNotMatch(again.err, /inversion-app/);
  const replaced = await cli(runCompareCommand, compareArgs(outDir, ['--overwrite']));
  assert.equal(replaced.code, 0, replaced.err);
  assert.deepEqual(readdirSync(outDir).sort(), ['cia', 'compare.png', 'eye-for-an-eye', 'run.json']);
});

test('compare: --method is a usage error; an unusable option is named by its flag; nothing is written', async () => {
  const outDir = join(root, 'compare-bad');
  const withMethod = await cli(runCompareCommand, compareArgs(outDir, ['--method', 'cia']));
  assert.equal(withMethod.code, 2);
  assert.match(withMethod.err, /eye4eye compare: --method: compare runs every method/);
  const badContrast = await cli(runCompareCommand, compareArgs(outDir, ['--contrast', '-2']));
  assert.equal(badContrast.code, 2);
  assert.match(badContrast.err, /--contrast: Expected number between 0 and 10 for contrastStrength/);
  assert.equal(existsSync(outDir), false);
  const help = await cli(runCompareCommand, ['--help']);
  assert.equal(help.code, 0);
  assert.ok(help.out.includes(COMPARE_HELP));
  assert.match(help.out, /--swap-guidance G/);
});

test('transfer --method cia: empty self-segmentation masks are an error with a hint (the reference would output NaN)', async () => {
  const outDir = join(root, 'cia-empty');
  const run = await cli(runTransferCommand, [
    ...['--method', 'cia', '--structure', join(examples, 'bird-blue.png'), '--appearance', join(examples, 'bird-red.png'), '--domain', 'bird'],
    ...['--model', sd1TinyModelDir, '--size', '128', '--steps', '6', '--skip', '2', '--adain-range', '2,6', '--cache-dir', join(root, 'cache-compare')],
    ...['--cross-attn-32-range', '1,5', '--cross-attn-64-range', '1,6', '--out', outDir],
  ]);
  assert.equal(run.code, 1, run.err);
  assert.match(
    run.err,
    /Expected at least 2 pixels of 'bird' \(clusters: [^)]*\) for self-segmentation mask of the (structure|appearance) image but received '[01] of 256 pixels'/,
  );
  assert.match(run.err, /hint: .*--no-masked-adain/);
  assert.equal(existsSync(outDir), false);
  const plain = await cli(runTransferCommand, [
    ...['--method', 'cia', '--structure', join(examples, 'bird-blue.png'), '--appearance', join(examples, 'bird-red.png'), '--domain', 'bird'],
    ...['--model', sd1TinyModelDir, '--size', '128', '--steps', '6', '--skip', '2', '--adain-range', '2,6', '--cache-dir', join(root, 'cache-compare')],
    ...['--no-masked-adain', '--out', outDir],
  ]);
  assert.equal(plain.code, 0, plain.err);
  assert.equal(JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')).options.maskedAdain, false);
});
