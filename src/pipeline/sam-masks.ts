/**
 * Object masks from SAM-HQ prompts, in the user's frame: boxes and points are pixels of the image FILE as the user
 * sees it (after EXIF orientation), and the mask comes back in the frame the transfer uses for that image.
 *
 * - fit 'stretch' (the official run): the SAM input is cv2.imread + cv2.resize INTER_LINEAR to 512 x 512, the prompt is
 *   scaled into that frame (x * 512 / W, y * 512 / H), and the mask is the official 512 x 512 one; it is stretched to the
 *   working size like the image (the two are in proportional coordinates).
 * - 'cover' / 'contain': SAM sees the oriented image at full resolution (the predictor resizes its longest side to the
 *   encoder's size itself), the prompt is used as given, and the mask has the image's own size, so it is cropped or
 *   padded exactly as the image is.
 *
 * With neither box nor points the box is the whole image, as run.py does. An empty predicted mask is an error.
 */
import { InvalidParameterError } from '../errors.js';
import { decodeSamSource, type ImageSource, type Size } from '../io/image.js';
import type { Fit } from '../io/fit.js';
import { cv2ResizeLinear } from '../io/resample/cv2.js';
import type { Raster } from '../io/resample/raster.js';
import { checkSamPrompt, type SamBox, type SamPoint } from '../models/sam/transforms.js';
import { requireNonEmpty, type SamSegmenter } from './sam-segmenter.js';

/** The official run's SAM input size (run.py: cv2.resize(img, (512, 512))). */
export const OFFICIAL_SAM_SIZE = 512;

/** A SAM-HQ prompt in the image file's pixel coordinates. */
export interface MaskPrompt {
  box?: SamBox | undefined;
  points?: readonly SamPoint[] | undefined;
}

export interface SamMaskResult {
  /** One channel, 0 or 255, in `frame` (512 x 512 for 'stretch', the image's size otherwise). */
  readonly mask: Raster;
  /** The picture SAM segmented (RGB, the size of `mask`). */
  readonly input: Raster;
  /** The prompt as given to SAM (in `input`'s pixels). */
  readonly prompt: MaskPrompt;
  /** The predicted IoU of the mask. */
  readonly score: number;
  /** The image's size in the user's frame (the frame of the prompt as given). */
  readonly imageSize: Size;
}

/**
 * Checks a prompt against the image's size in the user's frame; `what` names the image, `parameters` the options
 * the box and the points came from (the error's parameter, so the CLI names the flag).
 */
export function checkMaskPrompt(prompt: MaskPrompt, size: Size, what: string, parameters = { box: 'box', points: 'points' }): void {
  try {
    checkSamPrompt(prompt, size.width, size.height);
  } catch (e) {
    if (e instanceof InvalidParameterError) {
      const parameter = e.parameter === 'box' ? parameters.box : parameters.points;
      throw new InvalidParameterError(`${e.message} (${what})`, { parameter });
    }
    throw e;
  }
}

function scalePrompt(prompt: MaskPrompt, sx: number, sy: number): MaskPrompt {
  return {
    box: prompt.box === undefined ? undefined : ([prompt.box[0] * sx, prompt.box[1] * sy, prompt.box[2] * sx, prompt.box[3] * sy] as const),
    points: prompt.points?.map((p) => ({ x: p.x * sx, y: p.y * sy, label: p.label })),
  };
}

/** The SAM input of an image for `fit`, and the prompt carried into its frame (module header). */
export async function samInputFor(
  source: ImageSource,
  prompt: MaskPrompt,
  fit: Fit,
  what: string,
): Promise<{ input: Raster; prompt: MaskPrompt; imageSize: Size }> {
  const full = await decodeSamSource(source, { fit, label: what });
  const imageSize = { width: full.width, height: full.height };
  checkMaskPrompt(prompt, imageSize, what);
  if (fit !== 'stretch') return { input: full, prompt, imageSize };
  const n = OFFICIAL_SAM_SIZE;
  const input = cv2ResizeLinear(full, n, n);
  return { input, prompt: scalePrompt(prompt, n / full.width, n / full.height), imageSize };
}

/** Segment one image with SAM-HQ (module header); `what` names the image in errors. */
export async function samMask(segmenter: SamSegmenter, source: ImageSource, prompt: MaskPrompt, fit: Fit, what: string): Promise<SamMaskResult> {
  const { input, prompt: inFrame, imageSize } = await samInputFor(source, prompt, fit, what);
  const result = await segmenter.segment(input, { box: inFrame.box, points: inFrame.points });
  requireNonEmpty(result, what);
  const data = Uint8Array.from(result.mask, (v) => (v !== 0 ? 255 : 0));
  return { mask: { width: result.width, height: result.height, channels: 1, data }, input, prompt: inFrame, score: result.score, imageSize };
}
