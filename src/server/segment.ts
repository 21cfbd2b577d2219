/**
 * POST /api/segment: a mask of one uploaded image from a box and/or clicked points, by a SAM-HQ segmenter given
 * when the server starts (`--sam-model`). Without one the route answers 501 with a clear message; masks can still
 * be uploaded as files, or left automatic (the method's unmasked matching).
 */
import sharp from 'sharp';
import { HttpError } from './http.js';
import { readUpload, type UploadLimits } from './uploads.js';

export interface SegmentPoint {
  x: number;
  y: number;
  /** 1 = object (positive click), 0 = background (negative click). */
  label: 0 | 1;
}

export interface SegmentPrompt {
  /** [x0, y0, x1, y1] in the image's pixels. */
  box?: readonly [number, number, number, number] | undefined;
  points?: readonly SegmentPoint[] | undefined;
}

/** RGB pixels of the uploaded image (EXIF orientation applied), row-major. */
export interface SegmentImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

/** What the server needs of a segmenter (src/pipeline/sam-segmenter.ts's SamSegmenter, wrapped in a worker). */
export interface Segmenter {
  /** Compute (and cache) the image's embedding, so that prompts on it answer fast. */
  embed(image: SegmentImage): Promise<void>;
  segment(image: SegmentImage, prompt: SegmentPrompt): Promise<{ mask: Uint8Array; width: number; height: number; score: number }>;
  close(): Promise<void>;
}

export const NO_SAM_MESSAGE =
  'no --sam-model given: start the server with `eye4eye serve --sam-model DIR` to make masks from a box or clicks (a mask file can still be uploaded, or the mask left automatic)';

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The prompt of a request, checked against the image's size. */
export function checkPrompt(body: Record<string, unknown>, width: number, height: number): SegmentPrompt {
  const prompt: SegmentPrompt = {};
  const raw = body['box'];
  if (raw !== undefined) {
    const box = (Array.isArray(raw) && raw.length === 4 && raw.every(finite) ? raw : [0, 0, 0, 0]) as [number, number, number, number];
    if (box[0] >= box[2] || box[1] >= box[3]) {
      throw new HttpError(400, 'E_INVALID_PARAMETER', 'box: expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1 (image pixels)', { parameter: 'box' });
    }
    if (box[0] < 0 || box[1] < 0 || box[2] > width || box[3] > height) {
      throw new HttpError(400, 'E_INVALID_PARAMETER', `box: [${box.join(', ')}] is outside the ${width}x${height} image`, { parameter: 'box' });
    }
    prompt.box = [box[0], box[1], box[2], box[3]] as const;
  }
  const points = body['points'];
  if (points !== undefined) {
    const ok =
      Array.isArray(points) &&
      points.length <= 64 &&
      points.every((p: unknown) => {
        const q = p as Record<string, unknown>;
        return (
          q !== null &&
          typeof q === 'object' &&
          finite(q['x']) &&
          finite(q['y']) &&
          (q['label'] === 0 || q['label'] === 1) &&
          q['x'] >= 0 &&
          q['y'] >= 0 &&
          q['x'] < width &&
          q['y'] < height
        );
      });
    if (!ok)
      throw new HttpError(400, 'E_INVALID_PARAMETER', `points: expected at most 64 {x, y, label: 0|1} inside the ${width}x${height} image`, {
        parameter: 'points',
      });
    prompt.points = (points as SegmentPoint[]).map((p) => ({ x: p.x, y: p.y, label: p.label }));
  }
  if (prompt.box === undefined && (prompt.points === undefined || prompt.points.length === 0)) {
    throw new HttpError(400, 'E_INVALID_PARAMETER', 'give a box or at least one point', { parameter: 'box' });
  }
  return prompt;
}

async function decodeImage(body: Record<string, unknown>, limits: UploadLimits): Promise<SegmentImage> {
  const upload = await readUpload('image', body['image'], limits);
  const { data, info } = await sharp(upload.data).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, data };
}

/** Answer one /api/embed request: { width, height, seconds } once the image's embedding exists. */
export async function embedRequest(segmenter: Segmenter | undefined, body: Record<string, unknown>, limits: UploadLimits): Promise<unknown> {
  if (segmenter === undefined) throw new HttpError(501, 'E_NO_SAM_MODEL', NO_SAM_MESSAGE);
  const unknown = Object.keys(body).filter((k) => k !== 'image');
  if (unknown.length > 0) throw new HttpError(400, 'E_INVALID_PARAMETER', `unknown field(s) ${unknown.join(', ')} (fields: image)`);
  const image = await decodeImage(body, limits);
  const start = performance.now();
  await segmenter.embed(image);
  return { width: image.width, height: image.height, seconds: (performance.now() - start) / 1000 };
}

/** Answer one /api/segment request: { mask: PNG data URL (white = object), width, height, score }. */
export async function segmentRequest(segmenter: Segmenter | undefined, body: Record<string, unknown>, limits: UploadLimits): Promise<unknown> {
  if (segmenter === undefined) throw new HttpError(501, 'E_NO_SAM_MODEL', NO_SAM_MESSAGE);
  const unknown = Object.keys(body).filter((k) => !['image', 'box', 'points'].includes(k));
  if (unknown.length > 0) throw new HttpError(400, 'E_INVALID_PARAMETER', `unknown field(s) ${unknown.join(', ')} (fields: image, box, points)`);
  const image = await decodeImage(body, limits);
  const prompt = checkPrompt(body, image.width, image.height);
  const result = await segmenter.segment(image, prompt);
  const png = await sharp(Buffer.from(result.mask.map((v) => (v === 0 ? 0 : 255))), { raw: { width: result.width, height: result.height, channels: 1 } })
    .png()
    .toBuffer();
  return { mask: `data:image/png;base64,${png.toString('base64')}`, width: result.width, height: result.height, score: result.score };
}
