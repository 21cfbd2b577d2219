import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

async function cli(args: readonly string[], options: { isTTY?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
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
  assert.deepEqual(await size(join(outDir, 'correspondence.png')), ['png', 256, 128]);
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
    injection: 'match',
    device: 'cpu',
    precision: 'fp32',
    crossAttn32Range: [10, 70],
    crossAttn64Range: [10, 90],
    swapGuidanceScale: 3.5,
    contrastStrength: 1.67,
    maskedAdain: true,
    structureMask: join(examples, 'bird-blue-mask.png'),
    appearanceMask: join(examples, 'bird-red-mask.png'),
  });
  const { identityHash, ...model } = run.model as { identityHash: string };
  assert.deepEqual(model, { id: sd1TinyModelDir, path: sd1TinyModelDir, kind: 'folder' });
  assert.match(identityHash, /^[0-9a-f]{16}$/);
  assert.equal(run.versions.eye4eye, JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
  assert.match(run.versions.onnxruntime, /^\d+\.\d+\.\d+/);
  for (const phase of ['load', 'encode', 'text', 'inversion-app', 'inversion-struct', 'transfer', 'decode', 'total'])
    assert.equal(typeof run.timings[phase], 'number', phase);
  assert.deepEqual(run.cache, { inversion: { app: 'miss', struct: 'miss' }, dir: join(root, 'cache') });
  assert.deepEqual(run.sizes, {
    structure: { width: 512, height: 512 },
    appearance: { width: 512, height: 512 },
    working: { width: 128, height: 128 },
    latent: { width: 16, height: 16 },
  });
  assert.deepEqual(run.correspondence, { site: 'up_blocks.3.attentions.2.transformer_blocks.0.attn1', iteration: 3, tokens: { width: 16, height: 16 } });
  assert.deepEqual(run.outputs, ['result.png', 'grid.png', 'mask-structure.png', 'mask-appearance.png', 'correspondence.png', 'run.json']);

  // Same images and inversion settings (masks do not enter the inversion): both inversions come from the cache.
  const outDir2 = join(root, 'out-2');
  const second = await cli(args(outDir2), { isTTY: true });
  assert.equal(second.code, 0, second.err);
  const run2 = JSON.parse(readFileSync(join(outDir2, 'run.json'), 'utf8'));
  assert.deepEqual(run2.cache.inversion, { app: 'hit', struct: 'hit' });
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
  assert.deepEqual(await size(join(outDir, 'correspondence.png')), ['png', 512, 128]);
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

test('a failure while writing removes what this run wrote', async () => {
  const outDir = join(root, 'out-blocked');
  mkdirSync(join(outDir, 'run.json'), { recursive: true }); // a folder where run.json should go: its rename fails
  const r = await cli(args(outDir));
  assert.equal(r.code, 1);
  // Progress lines come first; the error is the last line.
  const last = r.err.trimEnd().split('\n').at(-1)!;
  assert.ok(last.startsWith(`eye4eye transfer: FileError [E_FILE]: ${outDir}: cannot write the outputs (EISDIR`), r.err);
  assert.deepEqual(readdirSync(outDir), ['run.json']);
  assert.deepEqual(readdirSync(join(outDir, 'run.json')), []);
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
