/**
 * `eye4eye mask --image FILE [--box x0,y0,x1,y1] [--point x,y,1|0 ...] [--out mask.png]`: an object mask from SAM-HQ
 * (src/pipeline/sam-masks.ts), written with an overlay picture (the image, the mask tinted, the box and points drawn).
 * Boxes and points are pixels of the image file; without them the box is the whole image (the official run's default).
 * Exit codes as `transfer`: 0 done, 2 usage, 1 any other E4EError. Both files are written to temporary names and
 * renamed; an existing file is replaced only with --overwrite.
 */
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { E4EError, InvalidParameterError } from '../errors.js';
import { DEFAULT_FIT, FITS, type Fit } from '../io/fit.js';
import { imageSize } from '../io/image.js';
import type { Raster } from '../io/resample/raster.js';
import { checkSamPrompt } from '../models/sam/transforms.js';
import { DEFAULT_SAM_MODEL_ID, obtainSamModel } from '../pipeline/model-source.js';
import { samMask, type MaskPrompt } from '../pipeline/sam-masks.js';
import { SamSegmenter } from '../pipeline/sam-segmenter.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../runtime/session.js';
import { parseBox, parsePoint, UsageError } from './options-table.js';

export const MASK_HELP = `  eye4eye mask --image FILE [--box x0,y0,x1,y1] [--point x,y,1|0 ...] [options]
    An object mask with SAM-HQ, from a box and/or points in the image file's pixels (none: the whole image, as
    the official run). Writes the mask (white = object) and OUT-overlay.png (the mask over the image).
    --image FILE        the image (PNG, JPEG, ...)
    --box x0,y0,x1,y1   a box around the object
    --point x,y,L       a point, L = 1 on the object, 0 on the background (repeat the flag for more points)
    --out FILE          the mask PNG (default mask.png); the overlay goes next to it as <name>-overlay.png
    --overwrite         replace existing output files
    --sam-model M       SAM-HQ weights: a Hugging Face id (default ${DEFAULT_SAM_MODEL_ID}), a SamHQModel folder,
                        or an official sam_hq_vit_{b,l,h}.pth
    --fit F             ${FITS.join(' | ')} (default ${DEFAULT_FIT}): 'stretch' segments the official 512x512 stretch
                        (cv2) and writes the 512x512 mask; the others segment the image itself at its own size
    --device DEV        ${EXECUTION_PROVIDERS.join(' | ')} (default cpu)
    --cache-dir DIR     graph cache folder`;

const MASK_OPTIONS = {
  image: { type: 'string' },
  box: { type: 'string' },
  point: { type: 'string', multiple: true },
  out: { type: 'string' },
  overwrite: { type: 'boolean' },
  'sam-model': { type: 'string' },
  fit: { type: 'string' },
  device: { type: 'string' },
  'cache-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The overlay picture: the segmented image, the mask tinted blue, the box in red and the points (green +, red x). */
export async function maskOverlayPng(input: Raster, mask: Raster, prompt: MaskPrompt): Promise<Buffer> {
  const { width, height } = input;
  const tinted = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const on = mask.data[p]! > 127;
    for (let c = 0; c < 3; c++) {
      const v = input.data[p * 3 + c]!;
      tinted[p * 3 + c] = on ? Math.round(0.5 * v + 0.5 * [40, 110, 255][c]!) : Math.round(0.6 * v);
    }
  }
  const stroke = Math.max(1, Math.round(Math.min(width, height) / 200));
  const shapes: string[] = [];
  if (prompt.box !== undefined) {
    const [x0, y0, x1, y1] = prompt.box;
    shapes.push(`<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#ff3030" stroke-width="${stroke}"/>`);
  }
  const r = 4 * stroke;
  for (const p of prompt.points ?? []) {
    const d =
      p.label === 1
        ? `M${p.x - r} ${p.y}H${p.x + r}M${p.x} ${p.y - r}V${p.y + r}`
        : `M${p.x - r} ${p.y - r}L${p.x + r} ${p.y + r}M${p.x - r} ${p.y + r}L${p.x + r} ${p.y - r}`;
    shapes.push(`<path d="${d}" stroke="${p.label === 1 ? '#30ff60' : '#ff3030'}" stroke-width="${2 * stroke}"/>`);
  }
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`);
  return sharp(tinted, { raw: { width, height, channels: 3 } })
    .composite([{ input: svg, top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
}

function overlayPath(out: string): string {
  const ext = extname(out);
  return join(dirname(out), `${basename(out, ext)}-overlay${ext === '' ? '.png' : ext}`);
}

/** Write files to temporary names, then rename them all; on failure nothing of this run stays. */
function checkTargets(paths: readonly string[], overwrite: boolean): void {
  for (const path of paths) {
    if (!existsSync(path)) continue;
    if (statSync(path).isDirectory()) throw new UsageError(`--out: ${path} is a folder; give a file name such as mask.png`);
    if (!overwrite) throw new UsageError(`--out: ${path} exists; pass --overwrite to replace it`);
  }
}

function writeAll(files: readonly { path: string; data: Buffer }[], overwrite: boolean): void {
  checkTargets(
    files.map((f) => f.path),
    overwrite,
  );
  const temps = files.map((f) => `${f.path}.${process.pid}.tmp`);
  try {
    files.forEach((f, i) => writeFileSync(temps[i]!, f.data));
    files.forEach((f, i) => renameSync(temps[i]!, f.path));
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true });
    throw e;
  }
}

export interface MaskCommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env?: NodeJS.ProcessEnv;
}

async function run(argv: readonly string[], io: MaskCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: MASK_OPTIONS, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help === true) {
    io.out(`Usage:\n${MASK_HELP}\n`);
    return 0;
  }
  if (v.image === undefined || v.image === '') throw new UsageError('missing required option --image');
  const fit = (v.fit ?? DEFAULT_FIT) as Fit;
  if (!FITS.includes(fit)) throw new UsageError(`--fit: expected one of ${FITS.join(', ')} but received '${v.fit}'`);
  const device = (v.device ?? 'cpu') as ExecutionProvider;
  if (!EXECUTION_PROVIDERS.includes(device)) throw new UsageError(`--device: expected one of ${EXECUTION_PROVIDERS.join(', ')} but received '${v.device}'`);
  const prompt: MaskPrompt = {
    box: v.box === undefined ? undefined : parseBox('box', v.box),
    points: v.point?.map((p) => parsePoint('point', p)),
  };
  const out = resolve(v.out ?? 'mask.png');
  const overlay = overlayPath(out);
  const overwrite = v.overwrite === true;
  checkTargets([out, overlay], overwrite);
  if (!existsSync(dirname(out))) throw new UsageError(`--out: the folder ${dirname(out)} does not exist`);

  const image = resolve(v.image);
  // The prompt against the image before any model is opened; the user's frame is the oriented image (module header).
  const size = await imageSize(image, { fit: 'cover', label: image });
  try {
    checkSamPrompt(prompt, size.width, size.height);
  } catch (e) {
    if (e instanceof InvalidParameterError) throw new UsageError(`${e.parameter === 'box' ? '--box' : '--point'}: ${e.message} (${image})`);
    throw e;
  }
  const source = await obtainSamModel(v['sam-model'] ?? DEFAULT_SAM_MODEL_ID, io.env === undefined ? {} : { env: io.env });
  const segmenter = SamSegmenter.open(source.path, { device, ...(v['cache-dir'] === undefined ? {} : { cacheDir: v['cache-dir'] }) });
  try {
    const result = await samMask(segmenter, image, prompt, fit, image);
    const maskPng = await sharp(Buffer.from(result.mask.data), { raw: { width: result.mask.width, height: result.mask.height, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    writeAll(
      [
        { path: out, data: maskPng },
        { path: overlay, data: await maskOverlayPng(result.input, result.mask, result.prompt) },
      ],
      overwrite,
    );
    const fraction = result.mask.data.reduce((n, x) => n + (x > 0 ? 1 : 0), 0) / result.mask.data.length;
    io.err(
      `eye4eye mask: ${result.mask.width}x${result.mask.height} mask, ${(100 * fraction).toFixed(1)} % of the pixels, predicted IoU ${result.score.toFixed(3)}\n`,
    );
    io.out(`${out}\n${overlay}\n`);
    return 0;
  } finally {
    await segmenter.close();
  }
}

/** Run `eye4eye mask ARGS`; returns the exit code. */
export async function runMaskCommand(argv: readonly string[], io: MaskCommandIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`eye4eye mask: ${e.message}\n  (see eye4eye mask --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye mask: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
