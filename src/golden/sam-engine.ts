/**
 * The golden runner's adapter onto the SAM-HQ library API (the SAM sibling of engine.ts): the case's model/ folder
 * opened lazily as a SamSegmenter, and the predictor's stages as plain rasters and tensors.
 */
import { cv2ResizeLinear } from '../io/resample/cv2.js';
import type { Raster } from '../io/resample/raster.js';
import { prepareSamImage } from '../models/sam/transforms.js';
import { SamSegmenter, type SamEmbedding, type SegmentPrompt } from '../pipeline/sam-segmenter.js';
import type { Tensor } from '../tensor/tensor.js';
import type { EngineOptions } from './engine.js';

export type { SegmentPrompt };

/** An opened SAM-HQ model. Opaque to the groups: pass it to the functions below. */
export interface SamGoldenEngine {
  readonly kind: 'sam';
}

interface SamEngineImpl extends SamGoldenEngine {
  readonly segmenter: SamSegmenter;
}

function impl(engine: SamGoldenEngine): SamSegmenter {
  return (engine as SamEngineImpl).segmenter;
}

export function openSamEngine(modelDir: string, options: EngineOptions = {}): SamGoldenEngine {
  const { cacheDir, device, threads, onStatus } = options;
  const engine: SamEngineImpl = {
    kind: 'sam',
    segmenter: SamSegmenter.open(modelDir, {
      ...(cacheDir === undefined ? {} : { cacheDir }),
      ...(device === undefined ? {} : { device }),
      ...(threads === undefined ? {} : { threads }),
      ...(onStatus === undefined ? {} : { onStatus }),
    }),
  };
  return engine;
}

export async function closeSamEngine(engine: SamGoldenEngine): Promise<void> {
  await impl(engine).close();
}

/** run.py's cv2.resize(img, (W, H), interpolation=INTER_LINEAR) (channel order does not matter: per channel). */
export function samStretch(image: Raster, width: number, height: number): Raster {
  return cv2ResizeLinear(image, width, height);
}

export interface SamImageStages {
  /** ResizeLongestSide output (RGB uint8 HWC). */
  readonly modelInputUint8: Raster;
  readonly modelInput: Tensor<'float32'>;
  readonly imageEmbeddings: Tensor<'float32'>;
  readonly intermEmbeddings: Tensor<'float32'>;
  readonly embedding: SamEmbedding;
}

/** set_image: resize, normalise, pad, encode (the embedding also goes into the segmenter's cache). */
export async function samSetImage(engine: SamGoldenEngine, image: Raster): Promise<SamImageStages> {
  const segmenter = impl(engine);
  const prepared = prepareSamImage(image, segmenter.model.imageSize);
  const embedding = await segmenter.embed(image);
  return {
    modelInputUint8: prepared.resized,
    modelInput: prepared.modelInput,
    imageEmbeddings: embedding.features.imageEmbeddings,
    intermEmbeddings: embedding.features.intermEmbeddings,
    embedding,
  };
}

export interface SamPredictStages {
  /** Model-frame box [4] and points [N * 2], as predict() passes them to the prompt encoder. */
  readonly box: Float32Array | undefined;
  readonly pointCoords: Float32Array | undefined;
  readonly densePe: Tensor<'float32'>;
  readonly sparseEmbeddings: Tensor<'float32'>;
  readonly denseEmbeddings: Tensor<'float32'>;
  readonly masksAll: Tensor<'float32'>;
  readonly iouAll: Tensor<'float32'>;
  readonly lowResLogits: Tensor<'float32'>;
  readonly score: number;
  /** H x W */
  readonly upscaledLogits: Float32Array;
  /** H x W, 0/1 */
  readonly mask: Uint8Array;
}

/** predict() for one prompt on an image set with samSetImage. */
export async function samPredict(engine: SamGoldenEngine, embedding: SamEmbedding, prompt: SegmentPrompt): Promise<SamPredictStages> {
  const { result, outputs, layout } = await impl(engine).predict(embedding, prompt);
  return {
    box: layout.box,
    pointCoords: layout.points,
    densePe: outputs.densePe,
    sparseEmbeddings: outputs.sparseEmbeddings,
    denseEmbeddings: outputs.denseEmbeddings,
    masksAll: outputs.masksAll,
    iouAll: outputs.iouAll,
    lowResLogits: outputs.lowResLogits,
    score: result.score,
    upscaledLogits: result.logits,
    mask: result.mask,
  };
}
