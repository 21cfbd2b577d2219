/**
 * The library's SAM-HQ segmenter: SamPredictor's set_image / predict with the image embedding cached by image
 * content, so a second prompt on the same image runs only the prompt encoder and the decoder.
 *
 *   const sam = SamSegmenter.open('path/to/sam-hq-vit-l');           // folder (config.json + model.safetensors) or .pth
 *   const { mask, width, height, score } = await sam.segment(image, { box: [20, 15, 47, 50] });
 *   requireNonEmpty({ mask, width, height }, 'the structure image');  // refuse an empty mask
 *   await sam.close();
 *
 * Boxes and points are in the pixels of the image given (the official run gives a 512x512 stretch of the file; that
 * resizing is the caller's); with neither, the box is the whole image, as run.py does. Defaults follow run.py:
 * multimaskOutput false, hqTokenOnly true.
 */
import { createHash } from 'node:crypto';
import { InvalidParameterError } from '../errors.js';
import type { Raster } from '../io/resample/raster.js';
import { SAM_MASK_THRESHOLD, samModelShapes } from '../models/sam/sam-configs.js';
import { checkSamPrompt, prepareSamImage, samPromptLayout, type SamBox, type SamPoint } from '../models/sam/transforms.js';
import { SamModel, type SamDecoderOutputs, type SamImageFeatures, type SamModelOptions } from '../runtime/sam-model.js';
import { openSamWeights } from '../models/sam/weights.js';
import type { Tensor } from '../tensor/tensor.js';

export type { SamBox, SamPoint };

export interface SamSegmenterOptions extends SamModelOptions {
  /** Image embeddings kept (most recently used first); default 4. */
  embeddingCacheSize?: number;
}

export interface SegmentPrompt {
  box?: SamBox | undefined;
  points?: readonly SamPoint[] | undefined;
  /** Low-res logits [1, 1, 4g, 4g] (or [1, 4g, 4g]) of an earlier result on the same image, to refine it. */
  maskInput?: Tensor<'float32'> | undefined;
  /** MaskDecoderHQ's multimask_output: the best of the multimask SAM tokens instead of token 0 (default false). */
  multimaskOutput?: boolean | undefined;
  /** Return the HQ token's mask alone (default true, as run.py); false: SAM logits + HQ logits. */
  hqTokenOnly?: boolean | undefined;
}

export interface SegmentResult {
  /** H x W, 1 inside the object, 0 outside (logits > 0). */
  readonly mask: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** The predicted IoU of the selected SAM token. */
  readonly score: number;
  /** [1, 1, 4g, 4g]: pass as maskInput to refine. */
  readonly lowResLogits: Tensor<'float32'>;
  /** H x W mask logits (before the threshold). */
  readonly logits: Float32Array;
}

/** An image's embedding (cached by content). */
export interface SamEmbedding {
  /** sha256 of the image's size and pixels. */
  readonly key: string;
  readonly features: SamImageFeatures;
  readonly inputSize: [number, number];
  readonly originalSize: [number, number];
}

/** sha256 of width, height, channels and pixels. */
export function imageContentKey(image: Raster): string {
  return createHash('sha256').update(`${image.width}x${image.height}x${image.channels}:`).update(image.data).digest('hex');
}

/** Throws a clear error when the mask selects no pixel (the CLI refuses to transfer with an empty mask). */
export function requireNonEmpty(mask: { readonly mask: Uint8Array; readonly width: number; readonly height: number }, what: string): void {
  if (mask.mask.some((v) => v !== 0)) return;
  throw new InvalidParameterError(`the predicted mask of ${what} is empty (no pixel of the ${mask.width}x${mask.height} image selected)`, {
    parameter: 'mask',
    hint: 'give a box or points around the object (or a mask file)',
  });
}

export class SamSegmenter {
  private readonly embeddings = new Map<string, Promise<SamEmbedding>>();
  private readonly cacheSize: number;
  /** How many times the image encoder ran (diagnostics, tests). */
  encoderRuns = 0;

  private constructor(
    readonly model: SamModel,
    options: SamSegmenterOptions,
  ) {
    this.cacheSize = options.embeddingCacheSize ?? 4;
  }

  /**
   * Open SAM-HQ weights (a transformers SamHQModel folder or its model.safetensors next to config.json, or an official
   * sam_hq_vit_{b,l,h}.pth); the config is checked against every weight here, nothing is built until used.
   */
  static open(weightsPath: string, options: SamSegmenterOptions = {}): SamSegmenter {
    const w = openSamWeights(weightsPath);
    const weights = { source: w.source, shapes: samModelShapes(w.config), description: w.description, identity: w.identity };
    return new SamSegmenter(SamModel.fromWeights(weights, options), options);
  }

  /** The image embedding (set_image), computed once per image content. */
  embed(image: Raster): Promise<SamEmbedding> {
    const key = imageContentKey(image);
    let pending = this.embeddings.get(key);
    if (pending !== undefined) {
      this.embeddings.delete(key); // most recent last
    } else {
      pending = (async () => {
        const prepared = prepareSamImage(image, this.model.imageSize);
        this.encoderRuns++;
        const features = await this.model.encode(prepared.modelInput);
        return { key, features, inputSize: prepared.inputSize, originalSize: prepared.originalSize };
      })();
      pending.catch(() => this.embeddings.delete(key));
    }
    this.embeddings.set(key, pending);
    while (this.embeddings.size > this.cacheSize) this.embeddings.delete(this.embeddings.keys().next().value!);
    return pending;
  }

  /** A mask of `image` for one prompt (box and/or points; the whole-image box when neither). */
  async segment(image: Raster, prompt: SegmentPrompt = {}): Promise<SegmentResult> {
    checkSamPrompt(prompt, image.width, image.height);
    return (await this.predict(await this.embed(image), prompt)).result;
  }

  /** predict() on an embedding, with every decoder output (the golden runner compares them). */
  async predict(
    embedding: SamEmbedding,
    prompt: SegmentPrompt,
  ): Promise<{ result: SegmentResult; outputs: SamDecoderOutputs; layout: ReturnType<typeof samPromptLayout> }> {
    const [height, width] = embedding.originalSize;
    checkSamPrompt(prompt, width, height);
    const layout = samPromptLayout(prompt, embedding.originalSize, embedding.inputSize);
    const low = 4 * this.model.gridSize;
    const maskInput =
      prompt.maskInput === undefined ? undefined : { dtype: 'float32' as const, dims: [1, 1, low, low], data: this.checkMaskInput(prompt.maskInput, low) };
    const outputs = await this.model.decode(embedding.features, {
      coords: layout.coords,
      labels: layout.labels,
      maskInput,
      multimaskOutput: prompt.multimaskOutput ?? false,
      hqTokenOnly: prompt.hqTokenOnly ?? true,
      inputSize: embedding.inputSize,
      originalSize: embedding.originalSize,
    });
    const logits = outputs.upscaledLogits.data;
    const mask = new Uint8Array(logits.length);
    for (let i = 0; i < logits.length; i++) mask[i] = logits[i]! > SAM_MASK_THRESHOLD ? 1 : 0;
    return { result: { mask, width, height, score: outputs.score, lowResLogits: outputs.lowResLogits, logits }, outputs, layout };
  }

  private checkMaskInput(t: Tensor<'float32'>, low: number): Float32Array {
    if (t.dtype !== 'float32' || t.data.length !== low * low || t.dims[t.dims.length - 1] !== low || t.dims[t.dims.length - 2] !== low) {
      throw new InvalidParameterError(`maskInput must be the ${low}x${low} low-res logits of an earlier result, got ${t.dtype}[${t.dims.join(', ')}]`, {
        parameter: 'maskInput',
      });
    }
    return t.data;
  }

  async close(): Promise<void> {
    this.embeddings.clear();
    await this.model.dispose();
  }
}
