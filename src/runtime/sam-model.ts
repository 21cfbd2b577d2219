/**
 * A SAM-HQ model opened for inference: the image encoder graph and the per-prompt decoder graph (prompt encoder,
 * MaskDecoderHQ, selection, postprocess_masks), built through the graph cache on first use (keyed by the weights'
 * identity, the builder code, the shapes and the build target) and run through session.ts.
 */
import { InvalidParameterError, ModelBuildError } from '../errors.js';
import type { TensorSource } from '../io/safetensors.js';
import type { SamModelShapes } from '../models/sam/sam-configs.js';
import { buildSamDecoder } from '../models/sam/sam-decoder.js';
import { buildSamVisionEncoder, samGridSize } from '../models/sam/vision-encoder.js';
import { buildTarget, type BuildTarget } from '../onnx/target.js';
import { WeightSet } from '../onnx/weight-scope.js';
import { formatDims, sameDims, type Tensor } from '../tensor/tensor.js';
import { ModelCache } from './model-cache.js';
import { Session, type Feeds, type SessionOptions } from './session.js';

export interface SamModelOptions extends SessionOptions {
  /** Graph cache folder (default: the platform cache, or E4E_CACHE_DIR). */
  cacheDir?: string;
  /** Called when a graph is built or loaded. */
  onStatus?: (message: string) => void;
}

/** The opened weights: a tensor source under transformers' SamHQModel names, the shapes, and what identifies them. */
export interface SamModelWeights {
  readonly source: TensorSource;
  readonly shapes: SamModelShapes;
  /** How errors name the weights (a path). */
  readonly description: string;
  /** JSON identifying the weights' content (part of the graph cache key). */
  readonly identity: unknown;
}

export interface SamImageFeatures {
  /** [1, C, g, g] */
  readonly imageEmbeddings: Tensor<'float32'>;
  /** [1, g, g, vit_dim] (the first global block's output) */
  readonly intermEmbeddings: Tensor<'float32'>;
}

/** Prompts in the model frame, laid out for the prompt encoder (see sam-decoder.ts). */
export interface SamDecoderPrompt {
  /** [N, 2] flattened (x, y) in the padded-square frame, before the +0.5 shift. */
  readonly coords: Float32Array;
  /** [N]: 1, 0, -1 (padding point), 2 / 3 (box corners). */
  readonly labels: Int32Array;
  /** [1, 1, 4g, 4g] low-res logits of an earlier prediction, or undefined. */
  readonly maskInput?: Tensor<'float32'> | undefined;
  readonly multimaskOutput: boolean;
  readonly hqTokenOnly: boolean;
  /** The resized image inside the padded square [h, w]. */
  readonly inputSize: readonly [number, number];
  /** The image given to set_image [H, W]. */
  readonly originalSize: readonly [number, number];
}

export interface SamDecoderOutputs {
  readonly densePe: Tensor<'float32'>;
  readonly sparseEmbeddings: Tensor<'float32'>;
  readonly denseEmbeddings: Tensor<'float32'>;
  /** [1, M + 1, 4g, 4g]: every token's logits (M SAM tokens, then the HQ token). */
  readonly masksAll: Tensor<'float32'>;
  /** [1, M] */
  readonly iouAll: Tensor<'float32'>;
  /** [1, 1, 4g, 4g] */
  readonly lowResLogits: Tensor<'float32'>;
  readonly score: number;
  /** [1, 1, H, W] */
  readonly upscaledLogits: Tensor<'float32'>;
}

export class SamModel {
  readonly shapes: SamModelShapes;
  readonly target: BuildTarget;
  private readonly cache: ModelCache;
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly entries = new Map<string, { name: string; key: string; modelPath: string }>();

  private constructor(
    private readonly weights: SamModelWeights,
    private readonly options: SamModelOptions,
  ) {
    this.shapes = weights.shapes;
    this.cache = new ModelCache(options.cacheDir);
    this.target = buildTarget(options.device ?? 'cpu', 'fp32');
  }

  static fromWeights(weights: SamModelWeights, options: SamModelOptions = {}): SamModel {
    return new SamModel(weights, options);
  }

  /** Side of the padded square the encoder takes. */
  get imageSize(): number {
    return this.shapes.vision.imageSize;
  }

  /** Side of the embedding grid (the low-res masks are 4x that). */
  get gridSize(): number {
    return samGridSize(this.shapes.vision);
  }

  private session(name: string, build: (w: WeightSet) => ReturnType<typeof buildSamDecoder>): Promise<Session> {
    let pending = this.sessions.get(name);
    if (pending === undefined) {
      pending = (async () => {
        const entry = this.cache.obtain({
          name,
          config: { shapes: this.shapes, target: this.target, weights: this.weights.identity },
          weightFiles: [],
          build: () => {
            this.options.onStatus?.(`building ${name} graph`);
            return { graph: build(WeightSet.fromSource(this.weights.source, this.weights.description)) };
          },
        });
        this.entries.set(name, { name, key: entry.key, modelPath: entry.modelPath });
        this.options.onStatus?.(`loading ${name} (${entry.built ? `built in ${entry.buildSeconds.toFixed(1)} s` : 'cached'})`);
        const sessionOptions: SessionOptions & { name: string } = { name };
        for (const key of ['device', 'threads', 'memoryArena', 'optimization', 'logSeverity'] as const) {
          if (this.options[key] !== undefined) (sessionOptions as unknown as Record<string, unknown>)[key] = this.options[key];
        }
        return Session.create(entry.modelPath, sessionOptions);
      })();
      pending.catch(() => this.sessions.delete(name));
      this.sessions.set(name, pending);
    }
    return pending;
  }

  /** Build (or take from the cache) both graphs now; a config that does not fit the weights fails here. */
  async prepare(): Promise<void> {
    await Promise.all([this.encoderSession(), this.decoderSession()]);
  }

  private encoderSession(): Promise<Session> {
    return this.session('sam_vision_encoder', (w) => buildSamVisionEncoder(w, this.shapes.vision, this.target));
  }

  private decoderSession(): Promise<Session> {
    return this.session('sam_decoder', (w) => buildSamDecoder(w, this.shapes, this.target));
  }

  /** The graph cache entry of a graph whose session was opened ('sam_vision_encoder', 'sam_decoder'). */
  graphEntry(name: string): { name: string; key: string; modelPath: string } {
    const e = this.entries.get(name);
    if (e === undefined) throw new ModelBuildError(`SAM graph ${name} has not been opened (call prepare() first)`);
    return e;
  }

  /** Image encoder on the normalised, padded model input [1, 3, S, S]. */
  async encode(modelInput: Tensor<'float32'>): Promise<SamImageFeatures> {
    const s = this.imageSize;
    if (!sameDims(modelInput.dims, [1, this.shapes.vision.numChannels, s, s])) {
      throw new InvalidParameterError(`SAM model input must be [1, ${this.shapes.vision.numChannels}, ${s}, ${s}], got ${formatDims(modelInput.dims)}`);
    }
    const out = await (await this.encoderSession()).run({ pixel_values: modelInput });
    return { imageEmbeddings: out['image_embeddings'] as Tensor<'float32'>, intermEmbeddings: out['interm_embeddings'] as Tensor<'float32'> };
  }

  /** The decoder graph's feeds for one prompt. */
  decoderFeeds(features: SamImageFeatures, prompt: SamDecoderPrompt): Feeds {
    const n = prompt.labels.length;
    if (n === 0 || prompt.coords.length !== 2 * n) throw new ModelBuildError(`SAM decoder: ${n} labels for ${prompt.coords.length / 2} points`);
    const low = 4 * this.gridSize;
    const maskInput = prompt.maskInput ?? { dtype: 'float32' as const, dims: [1, 1, low, low], data: new Float32Array(low * low) };
    if (!sameDims(maskInput.dims, [1, 1, low, low])) {
      throw new InvalidParameterError(`SAM mask input must be [1, 1, ${low}, ${low}] low-res logits, got ${formatDims(maskInput.dims)}`, {
        parameter: 'maskInput',
      });
    }
    const flag = (b: boolean): Tensor<'bool'> => ({ dtype: 'bool', dims: [1], data: Uint8Array.of(b ? 1 : 0) });
    const size = (hw: readonly [number, number]): Tensor<'int64'> => ({ dtype: 'int64', dims: [2], data: BigInt64Array.of(BigInt(hw[0]), BigInt(hw[1])) });
    return {
      image_embeddings: features.imageEmbeddings,
      interm_embeddings: features.intermEmbeddings,
      point_coords: { dtype: 'float32', dims: [1, n, 2], data: prompt.coords },
      point_labels: { dtype: 'int32', dims: [1, n], data: prompt.labels },
      mask_input: maskInput,
      has_mask_input: flag(prompt.maskInput !== undefined),
      multimask_output: flag(prompt.multimaskOutput),
      hq_token_only: flag(prompt.hqTokenOnly),
      input_size: size(prompt.inputSize),
      original_size: size(prompt.originalSize),
    };
  }

  /** Prompt encoder + HQ mask decoder + selection + postprocess for one prompt on encoded features. */
  async decode(features: SamImageFeatures, prompt: SamDecoderPrompt): Promise<SamDecoderOutputs> {
    const out = await (await this.decoderSession()).run(this.decoderFeeds(features, prompt));
    const f = (name: string): Tensor<'float32'> => out[name] as Tensor<'float32'>;
    return {
      densePe: f('dense_pe'),
      sparseEmbeddings: f('sparse_embeddings'),
      denseEmbeddings: f('dense_embeddings'),
      masksAll: f('decoder_masks_all'),
      iouAll: f('decoder_iou_all'),
      lowResLogits: f('low_res_logits'),
      score: f('iou_predictions').data[0]!,
      upscaledLogits: f('upscaled_logits'),
    };
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) {
      try {
        await (await s).dispose();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
    this.weights.source.close();
  }
}
