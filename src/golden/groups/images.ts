/**
 * Group `images`: the official loading of each image of the case (images/ folder), per tensor
 * `images.<image>.<what>`:
 *
 * - `rgb`          Pillow path, np.array(Image.open(p).convert('RGB'))
 * - `cv2_decoded`  OpenCV path, cv2.imread (IMREAD_COLOR) in RGB order
 * - `sd_<size>`    Pillow path + Image.resize(size) BICUBIC (load_size)
 * - `sam_<size>`   OpenCV path + cv2.resize(size, INTER_LINEAR) (run.py)
 * - `pil_decoded` / `pil_palette` (diagnostic, never compared): Image.open mode-native, for PNG
 *
 * The file of an image is io.json `images.<image>.file` (relative to the case). The size of `sd_*` / `sam_*` is
 * io.json `sizes.<what>` ({W, H}) when present, else the tensor's documented shape [H, W, 3]; the two must agree.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GoldenError } from '../../errors.js';
import { decodeRgb, pilArray, type DecodePath } from '../../io/decode.js';
import { decodePng, isPng } from '../../io/png.js';
import { cv2ResizeLinear } from '../../io/resample/cv2.js';
import { pilResize } from '../../io/resample/pil.js';
import type { Raster } from '../../io/resample/raster.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GoldenContext } from '../runner.js';
import { eachOutput } from './common.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function imageFile(ctx: GoldenContext, image: string): string {
  const images = ctx.golden.meta['images'];
  const entry = isRecord(images) ? images[image] : undefined;
  const file = isRecord(entry) ? entry['file'] : undefined;
  if (typeof file !== 'string')
    throw new GoldenError(`${ctx.golden.dir}: io.json has no images.${image}.file (the image file of the tensors images.${image}.*)`);
  const path = resolve(ctx.golden.dir, file);
  if (!path.startsWith(join(ctx.golden.dir, '')) && path !== ctx.golden.dir) {
    throw new GoldenError(`${ctx.golden.dir}: io.json images.${image}.file '${file}' points outside the case folder`);
  }
  return path;
}

/** Target size (W, H) of an `sd_*` / `sam_*` tensor. */
function targetSize(ctx: GoldenContext, name: string, what: string): { width: number; height: number } {
  const shape = ctx.golden.tensors[name]?.shape;
  const fromShape = shape !== undefined && shape.length === 3 && shape[2] === 3 ? { width: shape[1]!, height: shape[0]! } : undefined;
  const sizes = ctx.golden.meta['sizes'];
  const entry = isRecord(sizes) ? sizes[what] : undefined;
  const fromSizes = isRecord(entry) && typeof entry['W'] === 'number' && typeof entry['H'] === 'number' ? { width: entry['W'], height: entry['H'] } : undefined;
  if (fromSizes !== undefined && fromShape !== undefined && (fromSizes.width !== fromShape.width || fromSizes.height !== fromShape.height)) {
    throw new GoldenError(`${name}: io.json sizes.${what} is ${fromSizes.width}x${fromSizes.height} (W x H) but the tensor's shape is [${shape!.join(', ')}]`);
  }
  const size = fromSizes ?? fromShape;
  if (size === undefined) throw new GoldenError(`${name}: no size for '${what}' (io.json sizes.${what} or a shape [H, W, 3])`);
  return size;
}

const asTensor = (r: Raster): Tensor<'uint8'> => ({ dtype: 'uint8', dims: [r.height, r.width, r.channels], data: r.data });

export async function runImagesGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const decoded = new Map<string, Raster>();
  const bytesOf = new Map<string, Buffer>();
  const fileBytes = (image: string): Buffer => {
    let b = bytesOf.get(image);
    if (b === undefined) {
      const path = imageFile(ctx, image);
      try {
        b = readFileSync(path);
      } catch (cause) {
        throw new GoldenError(`${path}: cannot read the image file of images.${image} (${(cause as Error).message})`, { cause });
      }
      bytesOf.set(image, b);
    }
    return b;
  };
  const decode = async (image: string, path: DecodePath): Promise<Raster> => {
    const key = `${image}\0${path}`;
    let r = decoded.get(key);
    if (r === undefined) {
      r = await decodeRgb(fileBytes(image), path, imageFile(ctx, image));
      decoded.set(key, r);
    }
    return r;
  };
  const out = await eachOutput(ctx, ctx.outputs(group), async (name) => {
    const parts = name.split('.');
    if (parts.length !== 3) throw new GoldenError(`${name}: expected a tensor named images.<image>.<what>`);
    const [, image, what] = parts as [string, string, string];
    if (what === 'rgb') return asTensor(await decode(image, 'pil'));
    if (what === 'cv2_decoded') return asTensor(await decode(image, 'cv2'));
    if (what.startsWith('sd_')) {
      const { width, height } = targetSize(ctx, name, what);
      return asTensor(pilResize(await decode(image, 'pil'), width, height, 'bicubic'));
    }
    if (what.startsWith('sam_')) {
      const { width, height } = targetSize(ctx, name, what);
      return asTensor(cv2ResizeLinear(await decode(image, 'cv2'), width, height));
    }
    throw new GoldenError(`${name}: no implementation for '${what}' (expected rgb, cv2_decoded, sd_<size> or sam_<size>)`);
  });
  // The diagnostic decoder internals, for --save (never compared).
  for (const name of Object.keys(ctx.golden.tensors)) {
    const [g, image, what] = name.split('.');
    if (g !== group || image === undefined || (what !== 'pil_decoded' && what !== 'pil_palette')) continue;
    try {
      const bytes = fileBytes(image);
      if (!isPng(bytes)) continue;
      const png = decodePng(bytes, imageFile(ctx, image));
      if (what === 'pil_decoded') out[name] = pilArray(png);
      else if (png.palette !== undefined) out[name] = { dtype: 'uint8', dims: [png.palette.length / 3, 3], data: png.palette };
    } catch {
      // A diagnostic only: an unreadable file already fails the outputs above.
    }
  }
  return out;
}
