/**
 * `--masks self-segmentation` for Eye-for-an-eye (an extension): a transfer on the tiny model writes the masks it
 * computed. On the cia-tiny inputs with Cross-Image Attention's schedule (guidance 1, AdaIN from iteration 4, the
 * same seed) the appearance and structure rows follow the reference's exactly, so the masks equal the golden's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runTransferCommand } from '../../../../src/cli/transfer-command.js';
import { validateTransferOptions } from '../../../../src/pipeline/options.js';
import { InvalidParameterError } from '../../../../src/errors.js';
import { loadGoldenCase } from '../../../../src/golden/golden-case.js';
import { fixturesDir, sd1TinyModelDir } from '../../../helpers/paths.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-segmasks-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function cli(args: readonly string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await runTransferCommand(args, { out: () => undefined, err: (s) => (err += s), env: { ...process.env, E4E_CACHE_DIR: join(root, 'cache') } });
  return { code, err };
}

test('eye4eye transfer --masks self-segmentation writes the self-segmentation masks (equal to the reference on cia-tiny)', async () => {
  const golden = loadGoldenCase(join(fixturesDir, 'golden', 'cia-tiny'));
  try {
    const png = async (name: string, file: string): Promise<string> => {
      const path = join(root, file);
      writeFileSync(
        path,
        await sharp(Buffer.from(golden.get(name).data as Uint8Array), { raw: { width: 128, height: 128, channels: 3 } })
          .png()
          .toBuffer(),
      );
      return path;
    };
    const outDir = join(root, 'out');
    const r = await cli([
      ...['--structure', await png('inputs.image_struct_uint8', 'struct.png'), '--appearance', await png('inputs.image_app_uint8', 'app.png')],
      ...['--domain', 'bird', '--model', sd1TinyModelDir, '--size', '128', '--steps', '20', '--skip', '6', '--guidance', '1'],
      ...['--feat-range', '2,14', '--adain-range', '5,20', '--seed', '1119', '--masks', 'self-segmentation', '--out', outDir],
    ]);
    assert.equal(r.code, 0, r.err);
    const run = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')) as { options: { masks: string } };
    assert.equal(run.options.masks, 'self-segmentation');
    for (const [file, name] of [
      ['mask-structure.png', 'segment.mask_struct_64'],
      ['mask-appearance.png', 'segment.mask_style_64'],
    ] as const) {
      const { data, info } = await sharp(join(outDir, file)).greyscale().raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [128, 128], file);
      const expected = golden.get(name).data as Uint8Array; // 16 x 16, nearest-upscaled x8
      const ours = Array.from({ length: 256 }, (_, p) => (data[Math.floor(p / 16) * 8 * 128 + (p % 16) * 8]! > 127 ? 1 : 0));
      assert.deepEqual(ours, [...expected], file);
    }
  } finally {
    golden.close();
  }
});

test('an empty self-segmentation mask is an error naming the image; mask files and self-segmentation exclude each other', async () => {
  const examples = join(fixturesDir, '..', '..', 'examples');
  const r = await cli([
    ...['--structure', join(examples, 'bird-blue.png'), '--appearance', join(examples, 'bird-red.png'), '--domain', 'bird'],
    ...['--model', sd1TinyModelDir, '--size', '128', '--steps', '6', '--skip', '2', '--feat-range', '1,5', '--adain-range', '2,6'],
    ...['--masks', 'self-segmentation', '--out', join(root, 'out-empty')],
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /at least 2 pixels of 'bird' \(clusters: BG, BG, BG, BG, BG\) for self-segmentation mask of the (structure|appearance) image but received '0 of 256 pixels'/,
  );
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', masks: 'self-segmentation', structureMask: 'm.png' }),
    (e: unknown) => e instanceof InvalidParameterError && /'given' when mask files are given/.test(e.message),
  );
  assert.throws(
    () => validateTransferOptions({ domain: 'bird', masks: 'clicks' }),
    (e: unknown) => e instanceof InvalidParameterError && /'given', 'sam', 'self-segmentation' for masks/.test(e.message),
  );
  assert.equal(validateTransferOptions({ domain: 'bird' }).masks, undefined, "absent means 'given'");
  assert.equal(validateTransferOptions({ domain: 'bird', masks: 'given' }).masks, 'given');
});
