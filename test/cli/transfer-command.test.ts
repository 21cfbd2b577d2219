import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runTransferCommand, TRANSFER_HELP } from '../../src/cli/transfer-command.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const examples = join(repoRoot, 'examples');
let root: string;
let savedCacheEnv: string | undefined;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-cli-'));
  savedCacheEnv = process.env['E4E_CACHE_DIR'];
  process.env['E4E_CACHE_DIR'] = join(root, 'cache');
});

after(() => {
  if (savedCacheEnv === undefined) delete process.env['E4E_CACHE_DIR'];
  else process.env['E4E_CACHE_DIR'] = savedCacheEnv;
  rmSync(root, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: readonly string[], options: { isTTY?: boolean; env?: NodeJS.ProcessEnv; freeBytes?: (dir: string) => number } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const io = {
    out: (s: string) => {
      out += s;
    },
    err: (s: string) => {
      err += s;
    },
    isTTY: options.isTTY ?? false,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.freeBytes === undefined ? {} : { freeBytes: options.freeBytes }),
  };
  const code = await runTransferCommand(args, io);
  return { code, out, err };
}

function args(outDir: string, extra: readonly string[] = [], overrides: Record<string, string> = {}): string[] {
  const base: Record<string, string> = {
    '--structure': join(examples, 'bird-blue.png'),
    '--appearance': join(examples, 'bird-red.png'),
    '--domain': 'bird',
    '--model': sd1TinyModelDir,
    '--size': '128',
    '--steps': '6',
    '--skip': '2',
    '--feat-range': '1,5',
    '--adain-range': '2,6',
    '--out': outDir,
    ...overrides,
  };
  return [...Object.entries(base).flatMap(([k, v]) => [k, v]), ...extra];
}

async function size(file: string): Promise<[string | undefined, number | undefined, number | undefined]> {
  const m = await sharp(file).metadata();
  return [m.format, m.width, m.height];
}

test('end to end on the tiny model: PNGs of the right sizes and a complete run.json; a second run reuses the inversions', async () => {
  const outDir = join(root, 'out-1');
  const masks = ['--structure-mask', join(examples, 'bird-blue-mask.png'), '--appearance-mask', join(examples, 'bird-red-mask.png')];
  const first = await cli(args(outDir, masks));
  assert.equal(first.code, 0, first.err);
  assert.equal(first.out, `${join(outDir, 'result.png')}\n`);
  assert.match(first.err, /^inversion-app: 6\/6 in \d+\.\d s$/m);
  assert.match(first.err, /^transfer: 4\/4 in \d+\.\d s$/m);
  assert.deepEqual(readdirSync(outDir).sort(), ['correspondence.png', 'grid.png', 'mask-appearance.png', 'mask-structure.png', 'result.png', 'run.json']);
  assert.deepEqual(await size(join(outDir, 'result.png')), ['png', 128, 128]);
  assert.deepEqual(await size(join(outDir, 'grid.png')), ['png', 384, 152]);
  assert.deepEqual(await size(join(outDir, 'correspondence.png')), ['png', 256, 152]);
  assert.deepEqual(await size(join(outDir, 'mask-structure.png')), ['png', 128, 128]);
  assert.deepEqual(await size(join(outDir, 'mask-appearance.png')), ['png', 128, 128]);

  const run = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
  assert.equal(run.command, 'transfer');
  assert.equal(run.inputs.structure, join(examples, 'bird-blue.png'));
  assert.equal(run.inputs.appearanceMask, join(examples, 'bird-red-mask.png'));
  assert.deepEqual(run.options, {
    method: 'eye-for-an-eye',
    domain: 'bird',
    prompt: 'A photo of a bird',
    numSteps: 6,
    skip: 2,
    guidanceScale: 2.5,
    inversionGuidance: 3.5,
    featRange: [1, 5],
    adainRange: [2, 6],
    seed: 0,
    size: 128,
    fit: 'cover',
    injection: 'match',
    device: 'cpu',
    precision: 'fp32',
    structureMask: join(examples, 'bird-blue-mask.png'),
    appearanceMask: join(examples, 'bird-red-mask.png'),
    cacheDir: join(root, 'cache'),
    hookSites: [
      'up_blocks.2.attentions.0.transformer_blocks.0.attn1',
      'up_blocks.2.attentions.1.transformer_blocks.0.attn1',
      'up_blocks.2.attentions.2.transformer_blocks.0.attn1',
      'up_blocks.3.attentions.0.transformer_blocks.0.attn1',
      'up_blocks.3.attentions.1.transformer_blocks.0.attn1',
      'up_blocks.3.attentions.2.transformer_blocks.0.attn1',
    ],
  });
  assert.deepEqual(run.commandLine, { argv: ['eye4eye', 'transfer', ...args(outDir, masks)], cwd: process.cwd() });
  // Given ranges as given, with the iterations they act on (4 iterations see steps 0, 0, 1, 2).
  assert.deepEqual(run.schedule, {
    iterations: 4,
    featRange: { range: [1, 5], from: 'given', iterations: [2, 3], structureCopyIterations: [] },
    adainRange: { range: [2, 6], from: 'given', iterations: [1, 3] },
  });
  const { identityHash, ...model } = run.model as { identityHash: string };
  assert.deepEqual(model, { id: sd1TinyModelDir, path: sd1TinyModelDir, kind: 'folder' });
  assert.match(identityHash, /^[0-9a-f]{16}$/);
  assert.equal(run.versions.eye4eye, JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
  assert.match(run.versions.onnxruntime, /^\d+\.\d+\.\d+/);
  for (const phase of ['load', 'encode', 'text', 'inversion-app', 'inversion-struct', 'transfer', 'decode', 'total'])
    assert.equal(typeof run.timings[phase], 'number', phase);
  assert.deepEqual(run.cache, {
    dir: join(root, 'cache'),
    writable: true,
    inversion: { app: 'miss', struct: 'miss' },
    graphs: [
      { name: 'vae_encoder', hit: false },
      { name: 'text_encoder', hit: false },
      { name: 'unet_freeu_e4e', hit: false },
      { name: 'vae_decoder', hit: false },
    ],
  });
  assert.deepEqual(run.sizes, {
    structure: { width: 512, height: 512 },
    appearance: { width: 512, height: 512 },
    working: { width: 128, height: 128 },
    latent: { width: 16, height: 16 },
  });
  assert.deepEqual(run.correspondence, { site: 'up_blocks.3.attentions.2.transformer_blocks.0.attn1', iteration: 3, tokens: { width: 16, height: 16 } });
  assert.deepEqual(run.outputs, ['result.png', 'grid.png', 'mask-structure.png', 'mask-appearance.png', 'correspondence.png', 'run.json']);

  // Same images and inversion settings (masks do not enter the inversion): both inversions come from the cache, and
  // so do the graphs. No --skip and no ranges: the reference's defaults (skip 32 of 100, [10, 70), [50, 100) of 68
  // iterations) scaled to 6 steps: skip 2, [1, 4) and [3, 6) of 4 iterations.
  const outDir2 = join(root, 'out-2');
  const defaults = args(outDir2).filter(
    (a, i, all) => !['--skip', '--feat-range', '--adain-range'].includes(a) && !['--skip', '--feat-range', '--adain-range'].includes(all[i - 1]!),
  );
  const second = await cli(defaults, { isTTY: true });
  assert.equal(second.code, 0, second.err);
  const run2 = JSON.parse(readFileSync(join(outDir2, 'run.json'), 'utf8'));
  assert.deepEqual(run2.cache.inversion, { app: 'hit', struct: 'hit' });
  assert.ok(
    run2.cache.graphs.every((g: { hit: boolean }) => g.hit),
    JSON.stringify(run2.cache.graphs),
  );
  assert.deepEqual([run2.options.skip, run2.options.featRange, run2.options.adainRange], [2, [1, 4], [3, 6]]);
  const scaled = 'default (the reference 100-step values, scaled to this schedule)';
  assert.deepEqual(run2.schedule, {
    iterations: 4,
    featRange: { range: [1, 4], from: scaled, iterations: [2, 3], structureCopyIterations: [] },
    adainRange: { range: [3, 6], from: scaled, iterations: [2, 3] },
  });
  assert.deepEqual(readdirSync(outDir2).sort(), ['correspondence.png', 'grid.png', 'result.png', 'run.json']);
  // The terminal progress bar: redrawn lines with phase, step/total and ETA.
  assert.match(second.err, /\rinversion-app +\[#{24}\] +6\/6 +ETA 0:00 \(cached\)\n/);
  assert.match(second.err, /\rtransfer +\[#{6}\.{18}\] +1\/4 +ETA \d+:\d\d/);
});

test('a wide structure image gives a wide result (short side = --size)', async () => {
  const wide = join(root, 'wide.png');
  await sharp(join(examples, 'bird-blue.png')).resize(400, 200, { fit: 'fill' }).png().toFile(wide);
  const outDir = join(root, 'out-wide');
  const r = await cli(args(outDir, [], { '--structure': wide }));
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await size(join(outDir, 'result.png')), ['png', 256, 128]);
  assert.deepEqual(await size(join(outDir, 'correspondence.png')), ['png', 512, 152]);
});

test('--fit stretch (the official loading) stretches a wide structure image to a square working size', async () => {
  const wide = join(root, 'wide-stretch.png');
  await sharp(join(examples, 'bird-blue.png')).resize(400, 200, { fit: 'fill' }).png().toFile(wide);
  const outDir = join(root, 'out-wide-stretch');
  const r = await cli(args(outDir, ['--fit', 'stretch'], { '--structure': wide }));
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await size(join(outDir, 'result.png')), ['png', 128, 128]);
  const bad = await cli(args(join(root, 'out-bad-fit'), ['--fit', 'crop']));
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /Expected one of 'stretch', 'cover', 'contain' for fit but received 'crop'/);
});

function expectNothingWritten(outDir: string): void {
  assert.ok(!existsSync(outDir) || readdirSync(outDir).length === 0, `${outDir} should be empty`);
}

test('bad inputs: message, exit code, and nothing written', async (t) => {
  const notImage = join(root, 'notes.png');
  writeFileSync(notImage, 'not an image at all');
  const emptyMask = join(root, 'empty-mask.png');
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
    .png()
    .toFile(emptyMask);
  const partial = join(root, 'model-without-vae');
  mkdirSync(partial);
  for (const c of ['unet', 'text_encoder', 'tokenizer', 'scheduler', 'model_index.json']) symlinkSync(join(sd1TinyModelDir, c), join(partial, c));
  const hub = join(root, 'hub');
  mkdirSync(hub);
  const missing = join(root, 'missing.png');
  const wideMask = join(root, 'wide-mask.png');
  await sharp(join(examples, 'bird-red-mask.png')).resize(300, 200, { fit: 'fill' }).png().toFile(wideMask);

  const cases: { name: string; argv: (out: string) => string[]; code: number; message: string | RegExp; env?: NodeJS.ProcessEnv }[] = [
    {
      name: 'missing file',
      argv: (o) => args(o, [], { '--structure': missing }),
      code: 1,
      message: `eye4eye transfer: ImageError [E_IMAGE]: ${missing}: image file not found\n`,
    },
    {
      name: 'non-image file',
      argv: (o) => args(o, [], { '--appearance': notImage }),
      code: 1,
      message: new RegExp(`^eye4eye transfer: ImageError \\[E_IMAGE\\]: ${notImage}: not a readable image \\(`),
    },
    {
      name: 'empty mask',
      argv: (o) => args(o, ['--structure-mask', emptyMask]),
      code: 1,
      message: `eye4eye transfer: ImageError [E_IMAGE]: ${emptyMask}: mask is empty (no pixel brighter than 127 at 128x128)\n  hint: a mask is white (or light) on the object and black elsewhere\n`,
    },
    {
      name: 'unknown option',
      argv: (o) => args(o, ['--colour', 'red']),
      code: 2,
      message: "eye4eye transfer: unknown option '--colour'\n  (see eye4eye transfer --help)\n",
    },
    {
      name: 'missing required option',
      argv: (o) => args(o).filter((a) => a !== '--domain' && a !== 'bird'),
      code: 2,
      message: 'eye4eye transfer: missing required option --domain\n  (see eye4eye transfer --help)\n',
    },
    {
      name: 'impossible size',
      argv: (o) => args(o, [], { '--size': '100' }),
      code: 2,
      message:
        'eye4eye transfer: --size: Expected multiple of 64 between 64 and 2048 for size but received 100 of type number\n  (see eye4eye transfer --help)\n',
    },
    {
      name: 'malformed number',
      argv: (o) => args(o, [], { '--steps': 'many' }),
      code: 2,
      message: "eye4eye transfer: --steps: expected a number but received 'many'\n  (see eye4eye transfer --help)\n",
    },
    {
      name: 'skip out of range',
      argv: (o) => args(o, [], { '--skip': '6' }),
      code: 2,
      message: 'eye4eye transfer: --skip: Expected integer between 0 and 5 for skip but received 6 of type number\n  (see eye4eye transfer --help)\n',
    },
    {
      name: 'feature range beyond the schedule',
      argv: (o) => args(o, [], { '--feat-range': '100,200', '--adain-range': '300,400' }),
      code: 2,
      message:
        'eye4eye transfer: --feat-range: featRange [100, 200) never fires: numSteps 6 and skip 2 give 4 transfer iterations, whose UNet calls see steps 0..2, so the start must be at most 2\n  hint: ranges count steps from the first iteration that is not skipped; leave the range out to get the default scaled to this schedule\n  (see eye4eye transfer --help)\n',
    },
    {
      name: 'AdaIN range beyond the schedule',
      argv: (o) => args(o, [], { '--adain-range': '5,10' }),
      code: 2,
      message:
        'eye4eye transfer: --adain-range: adainRange [5, 10) never fires: numSteps 6 and skip 2 give 4 transfer iterations (steps 0..3) and AdaIN runs after steps start - 1 .. end, so the start must be at most 4\n  hint: ranges count steps from the first iteration that is not skipped; leave the range out to get the default scaled to this schedule\n  (see eye4eye transfer --help)\n',
    },
    {
      name: 'option given twice',
      argv: (o) => args(o, ['--steps', '8']),
      code: 2,
      message: "eye4eye transfer: option '--steps' is given twice ('6' and '8'); give it once\n  (see eye4eye transfer --help)\n",
    },
    {
      name: 'flag given twice',
      argv: (o) => args(o, ['--overwrite', '--overwrite']),
      code: 2,
      message: "eye4eye transfer: option '--overwrite' is given twice; give it once\n  (see eye4eye transfer --help)\n",
    },
    {
      name: 'mask of another aspect than its image',
      argv: (o) => args(o, ['--appearance-mask', wideMask]),
      code: 1,
      message: `eye4eye transfer: ImageError [E_IMAGE]: ${wideMask}: the appearance mask is 300x200 but the appearance image ${join(examples, 'bird-red.png')} is 512x512; a mask must have its image's aspect ratio\n  hint: use a mask drawn on the appearance image (the same size, or the same picture scaled)\n`,
    },
    {
      name: 'model folder missing a component',
      argv: (o) => args(o, [], { '--model': partial }),
      code: 1,
      message: new RegExp(`^eye4eye transfer: FileError \\[E_FILE\\]: ${join(partial, 'vae')}: component folder 'vae' not found`),
    },
    {
      name: 'hub id not cached, offline',
      argv: (o) => args(o, [], { '--model': 'someone/not-cached' }),
      code: 1,
      env: { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' },
      message: new RegExp(
        `^eye4eye transfer: ModelNotFoundError \\[E_MODEL_NOT_FOUND\\]: model 'someone/not-cached' is not in the Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be downloaded; looked at: ${join(hub, 'models--someone--not-cached', 'refs', 'main')}.*\n  hint: download it with \`huggingface-cli download someone/not-cached\``,
      ),
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const outDir = join(root, `out-bad-${c.name.replace(/\W+/g, '-')}`);
      const r = await cli(c.argv(outDir), c.env === undefined ? {} : { env: c.env });
      assert.equal(r.code, c.code, r.err);
      if (typeof c.message === 'string') assert.equal(r.err, c.message);
      else assert.match(r.err, c.message);
      assert.equal(r.out, '');
      expectNothingWritten(outDir);
    });
  }
});

/** Names and contents of the files in `dir` (a missing folder: null), to compare before and after a run. */
function snapshot(dir: string): Record<string, string> | null {
  if (!existsSync(dir)) return null;
  return Object.fromEntries(readdirSync(dir).map((f) => [f, statSync(join(dir, f)).isFile() ? readFileSync(join(dir, f), 'base64') : '<folder>']));
}

/** A run whose error comes before any computing: no progress line and no status line, only the error. */
function assertFailsFirst(r: Run, code: number, message: string): void {
  assert.equal(r.code, code, r.err);
  assert.equal(r.err, message);
  assert.equal(r.out, '');
}

test('the output folder is checked before any computing; nothing the tool did not create is touched', async (t) => {
  const aFile = join(root, 'a-file.txt');
  writeFileSync(aFile, 'keep me');
  const foreign = join(root, 'out-foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  mkdirSync(join(foreign, 'run.json')); // a folder where run.json would go (not an eye4eye run)
  await t.test('--out names a file', async () => {
    const r = await cli(args(aFile));
    assertFailsFirst(
      r,
      1,
      `eye4eye transfer: FileError [E_FILE]: ${aFile}: --out names a file, not a folder\n  hint: give --out a new or empty folder (it is created when missing)\n`,
    );
    assert.equal(readFileSync(aFile, 'utf8'), 'keep me');
  });
  await t.test('--out under a file', async () => {
    const r = await cli(args(join(aFile, 'out')));
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(
        `^eye4eye transfer: FileError \\[E_FILE\\]: ${join(aFile, 'out')}: cannot create the output folder \\(ENOTDIR: .*\\)\n  hint: give --out a folder you can write to\n$`,
      ),
    );
    assert.equal(readFileSync(aFile, 'utf8'), 'keep me');
  });
  await t.test('a folder with files of its own, even with --overwrite', async () => {
    const before = snapshot(foreign);
    for (const extra of [[], ['--overwrite']]) {
      const r = await cli(args(foreign, extra));
      assertFailsFirst(
        r,
        1,
        `eye4eye transfer: FileError [E_FILE]: ${foreign}: the output folder holds files that are not from an eye4eye run (notes.txt, run.json)\n  hint: eye4eye writes into a new or empty folder, or over an earlier eye4eye run with --overwrite; give --out another folder\n`,
      );
      assert.deepEqual(snapshot(foreign), before);
    }
  });
  await t.test('no room for the outputs: an existing empty folder stays', async () => {
    const empty = join(root, 'out-full-disk');
    mkdirSync(empty);
    const r = await cli(args(empty), { freeBytes: () => 1000 });
    assertFailsFirst(
      r,
      1,
      `eye4eye transfer: FileError [E_FILE]: ${empty}: 0.0 MB free, the outputs need about 0.7 MB\n  hint: free some space or give --out a folder on another disk\n`,
    );
    assert.deepEqual(snapshot(empty), {});
  });
});

test('a reused --out: refused without --overwrite; with it, the earlier run is replaced whole, never mixed', async () => {
  const outDir = join(root, 'out-reused');
  const masks = ['--structure-mask', join(examples, 'bird-blue-mask.png'), '--appearance-mask', join(examples, 'bird-red-mask.png')];
  const first = await cli(args(outDir, masks));
  assert.equal(first.code, 0, first.err);
  const before = snapshot(outDir);
  const again = await cli(args(outDir));
  assertFailsFirst(
    again,
    1,
    `eye4eye transfer: FileError [E_FILE]: ${outDir}: the output folder holds an earlier run (correspondence.png, grid.png, mask-appearance.png, mask-structure.png, result.png, run.json)\n  hint: pass --overwrite to replace that run, or give --out a new folder\n`,
  );
  assert.deepEqual(snapshot(outDir), before);
  // With --overwrite and no masks: the earlier run's mask pictures go, and run.json lists exactly what is there.
  const replaced = await cli(args(outDir, ['--overwrite', '--seed', '3']));
  assert.equal(replaced.code, 0, replaced.err);
  assert.deepEqual(readdirSync(outDir).sort(), ['correspondence.png', 'grid.png', 'result.png', 'run.json']);
  const run = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
  assert.equal(run.options.seed, 3);
  assert.deepEqual([...run.outputs].sort(), readdirSync(outDir).sort());
});

test('two runs into one folder at once: the second is refused before computing, the first finishes', async () => {
  const outDir = join(root, 'out-concurrent');
  let second: Promise<Run> | undefined;
  let firstErr = '';
  const io = {
    out: () => undefined,
    err: (s: string) => {
      firstErr += s;
      second ??= cli(args(outDir, [], { '--seed': '5' }));
    },
    isTTY: false,
  };
  const first = await runTransferCommand(args(outDir, [], { '--seed': '4' }), io);
  assert.equal(first, 0, firstErr);
  const r = await second!;
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    new RegExp(
      `^eye4eye transfer: FileError \\[E_FILE\\]: ${outDir}: the output folder is in use by another eye4eye run \\(pid ${process.pid}, started \\d{4}-.*Z\\)\n  hint: wait for it to finish, or give --out another folder\n$`,
    ),
  );
  assert.equal(JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')).options.seed, 4);
  assert.deepEqual(readdirSync(outDir).sort(), ['correspondence.png', 'grid.png', 'result.png', 'run.json']);
});

test('Ctrl-C: exit 130, our message last, and the (existing, empty) output folder left as it was', async () => {
  const outDir = join(root, 'out-interrupted');
  mkdirSync(outDir);
  let err = '';
  let sent = false;
  const io = {
    out: () => undefined,
    err: (s: string) => {
      err += s;
      if (!sent && s.startsWith('inversion-app')) {
        sent = true;
        process.emit('SIGINT');
      }
    },
    isTTY: false,
  };
  const listeners = process.listenerCount('SIGINT');
  const code = await runTransferCommand(args(outDir, [], { '--seed': '11' }), io);
  assert.equal(code, 130, err);
  assert.equal(err.trimEnd().split('\n').at(-1), 'eye4eye transfer: interrupted (Ctrl-C); nothing was written');
  assert.deepEqual(snapshot(outDir), {});
  assert.equal(process.listenerCount('SIGINT'), listeners);
});

test('a cache folder that cannot be written: the run goes on without caching and says so', async () => {
  // A file where the cache folder should be: nothing can be cached; graphs are built into a temporary folder.
  const cacheFile = join(root, 'cache-is-a-file');
  writeFileSync(cacheFile, 'x');
  const scratchBefore = readdirSync(tmpdir()).filter((f) => f.startsWith('eye4eye-graphs-'));
  const outDir = join(root, 'out-nocache');
  const r = await cli(args(outDir, ['--cache-dir', cacheFile]));
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.err,
    new RegExp(
      `^eye4eye: the cache folder ${cacheFile} cannot be written \\(ENOTDIR: .*\\); running without caching: graphs are built into a temporary folder removed at the end, and inversions are not saved$`,
      'm',
    ),
  );
  const run = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8'));
  assert.equal(run.cache.writable, false);
  assert.match(run.cache.notWritableReason, /^ENOTDIR/);
  assert.equal(readFileSync(cacheFile, 'utf8'), 'x');
  assert.deepEqual(
    readdirSync(tmpdir()).filter((f) => f.startsWith('eye4eye-graphs-')),
    scratchBefore,
  );
  // A filled cache whose inversions cannot be saved (inversions/ is a file here): its graphs are still used.
  const filled = join(root, 'cache');
  const inversions = join(filled, 'inversions');
  renameSync(inversions, `${inversions}.saved`);
  writeFileSync(inversions, 'not a folder');
  try {
    const outDir2 = join(root, 'out-readonly-cache');
    const r2 = await cli(args(outDir2, [], { '--seed': '21' }));
    assert.equal(r2.code, 0, r2.err);
    assert.match(r2.err, /cannot be written \(EEXIST: .*\); running without caching/);
    const run2 = JSON.parse(readFileSync(join(outDir2, 'run.json'), 'utf8'));
    assert.equal(run2.cache.writable, false);
    assert.ok(
      run2.cache.graphs.every((g: { hit: boolean }) => g.hit),
      JSON.stringify(run2.cache.graphs),
    );
    assert.equal(readFileSync(inversions, 'utf8'), 'not a folder');
  } finally {
    rmSync(inversions);
    renameSync(`${inversions}.saved`, inversions);
  }
});

test('--help lists every flag', async () => {
  const r = await cli(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.out, `Usage:\n${TRANSFER_HELP}\n`);
  for (const flag of [
    '--structure',
    '--appearance',
    '--domain',
    '--prompt',
    '--structure-mask',
    '--appearance-mask',
    '--steps',
    '--skip',
    '--guidance',
    '--seed',
    '--size',
    '--model',
    '--device',
    '--out',
    '--v-injection',
    '--cache-dir',
  ]) {
    assert.ok(r.out.includes(flag), flag);
  }
});

test('--hook-sites picks where the method acts; an unknown module path is an error naming it', async () => {
  const outDir = join(root, 'out-sites');
  const site = 'up_blocks.3.attentions.2.transformer_blocks.0.attn1';
  const ok = await cli(args(outDir, ['--hook-sites', site]));
  assert.equal(ok.code, 0, ok.err);
  const run = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')) as { options: { hookSites?: string[] } };
  assert.deepEqual(run.options.hookSites, [site]);
  const badDir = join(root, 'out-sites-bad');
  const bad = await cli(args(badDir, ['--hook-sites', 'up_blocks.7.attentions.0.transformer_blocks.0.attn1']));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /no attention module at up_blocks\.7\.attentions\.0\.transformer_blocks\.0\.attn1 \(attn1 modules of this UNet: /);
  assert.equal(existsSync(badDir) && readdirSync(badDir).length > 0, false);
  const malformed = await cli(args(join(root, 'out-sites-m'), ['--hook-sites', 'up_blocks.3']));
  assert.equal(malformed.code, 2);
  assert.match(malformed.err, /Expected non-empty list of distinct attn1 module paths .* for hookSites but received \["up_blocks\.3"\] of type array/);
});
