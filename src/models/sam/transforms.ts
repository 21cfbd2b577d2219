/**
 * The official predictor's small per-image and per-prompt arithmetic (utils/transforms.py ResizeLongestSide,
 * Sam.preprocess, SamPredictor.predict's prompt handling), in plain typed arrays; the resampling itself is the exact
 * Pillow port (io/resample/pil.ts) that torchvision's resize of a PIL image runs.
 */
import { invalidParameterError, InvalidParameterError } from '../../errors.js';
import { pilResize } from '../../io/resample/pil.js';
import type { Raster } from '../../io/resample/raster.js';
import type { Tensor } from '../../tensor/tensor.js';
import { SAM_PIXEL_MEAN, SAM_PIXEL_STD } from './sam-configs.js';

/** ResizeLongestSide.get_preprocess_shape: (newh, neww) = (int(h s + 0.5), int(w s + 0.5)), s = long / max(h, w). */
export function preprocessShape(height: number, width: number, longSide: number): [number, number] {
  const scale = (longSide * 1.0) / Math.max(height, width);
  return [Math.trunc(height * scale + 0.5), Math.trunc(width * scale + 0.5)];
}

export interface SamImageInput {
  /** ResizeLongestSide(S).apply_image: PIL bilinear to the preprocess shape (RGB uint8 HWC). */
  readonly resized: Raster;
  /** Sam.preprocess: (x - mean) / std in float32, zero-padded right and bottom to [1, 3, S, S]. */
  readonly modelInput: Tensor<'float32'>;
  /** [h, w] of `resized` (predictor.input_size). */
  readonly inputSize: [number, number];
  /** [H, W] of the given image (predictor.original_size). */
  readonly originalSize: [number, number];
}

/** set_image up to the encoder: resize the longest side to `imageSize`, normalise, pad. */
export function prepareSamImage(image: Raster, imageSize: number): SamImageInput {
  if (image.channels !== 3) throw invalidParameterError('image channels', 'an RGB image (3 channels)', image.channels);
  const [h, w] = preprocessShape(image.height, image.width, imageSize);
  const resized = pilResize(image, w, h, 'bilinear');
  const data = new Float32Array(3 * imageSize * imageSize); // zero = the padding, after normalisation
  const plane = imageSize * imageSize;
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(SAM_PIXEL_MEAN[c]!);
    const std = Math.fround(SAM_PIXEL_STD[c]!);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = resized.data[(y * w + x) * 3 + c]!;
        data[c * plane + y * imageSize + x] = Math.fround(Math.fround(v - mean) / std);
      }
    }
  }
  return { resized, modelInput: { dtype: 'float32', dims: [1, 3, imageSize, imageSize], data }, inputSize: [h, w], originalSize: [image.height, image.width] };
}

export interface SamPoint {
  readonly x: number;
  readonly y: number;
  /** 1 = foreground (positive), 0 = background (negative). */
  readonly label: 0 | 1;
}

/** XYXY in the pixels of the image given to the segmenter. */
export type SamBox = readonly [number, number, number, number];

/**
 * Checks a prompt against the image (W x H): coordinates finite and inside [0, W] x [0, H], a box with x0 < x1 and
 * y0 < y1, labels 0 or 1.
 */
export function checkSamPrompt(prompt: { box?: SamBox | undefined; points?: readonly SamPoint[] | undefined }, width: number, height: number): void {
  const { box, points } = prompt;
  if (box !== undefined) {
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => Number.isFinite(v))) {
      throw invalidParameterError('box', 'four finite numbers [x0, y0, x1, y1]', box);
    }
    const [x0, y0, x1, y1] = box;
    if (x0 < 0 || y0 < 0 || x1 > width || y1 > height) {
      throw new InvalidParameterError(`box [${box.join(', ')}] is outside the ${width}x${height} image (x in [0, ${width}], y in [0, ${height}])`, {
        parameter: 'box',
      });
    }
    if (x1 <= x0 || y1 <= y0) {
      throw new InvalidParameterError(`box [${box.join(', ')}] is degenerate: it needs x0 < x1 and y0 < y1`, { parameter: 'box' });
    }
  }
  for (const [i, p] of (points ?? []).entries()) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) throw invalidParameterError(`points[${i}]`, 'finite x and y', p);
    if (p.x < 0 || p.y < 0 || p.x > width || p.y > height) {
      throw new InvalidParameterError(`point ${i} (${p.x}, ${p.y}) is outside the ${width}x${height} image`, { parameter: 'points' });
    }
    if (p.label !== 0 && p.label !== 1) throw invalidParameterError(`points[${i}].label`, '1 (foreground) or 0 (background)', p.label);
  }
}

/** ResizeLongestSide.apply_coords on one coordinate: x * (new / old) in float64, then float32 (torch.as_tensor). */
function toModelFrame(v: number, oldSize: number, newSize: number): number {
  return Math.fround(v * (newSize / oldSize));
}

/**
 * predict()'s prompt layout for the prompt encoder: points (model frame), then a padding point (0, 0) with label -1
 * when there is no box, then the box corners with labels 2 and 3. With neither, the official default box: the
 * whole image.
 */
export function samPromptLayout(
  prompt: { box?: SamBox | undefined; points?: readonly SamPoint[] | undefined },
  originalSize: readonly [number, number],
  inputSize: readonly [number, number],
): { coords: Float32Array; labels: Int32Array; box: Float32Array | undefined; points: Float32Array | undefined } {
  const [oh, ow] = originalSize;
  const [nh, nw] = inputSize;
  const points = prompt.points ?? [];
  const box = prompt.box ?? (points.length === 0 ? ([0, 0, ow, oh] as const) : undefined);
  const coords: number[] = [];
  const labels: number[] = [];
  for (const p of points) {
    coords.push(toModelFrame(p.x, ow, nw), toModelFrame(p.y, oh, nh));
    labels.push(p.label);
  }
  const pointCoords = points.length > 0 ? Float32Array.from(coords) : undefined;
  let boxCoords: Float32Array | undefined;
  if (box === undefined) {
    coords.push(0, 0);
    labels.push(-1);
  } else {
    boxCoords = Float32Array.of(toModelFrame(box[0], ow, nw), toModelFrame(box[1], oh, nh), toModelFrame(box[2], ow, nw), toModelFrame(box[3], oh, nh));
    coords.push(...boxCoords);
    labels.push(2, 3);
  }
  return { coords: Float32Array.from(coords), labels: Int32Array.from(labels), box: boxCoords, points: pointCoords };
}
