/**
 * The library API (docs/architecture.md, "Data flow of a transfer"): load a model once, then run appearance transfers with
 * progress events and an AbortSignal. The method (src/methods/) is chosen by name in the options.
 *
 *   structure.png, appearance.png ──io/image──▶ [1,3,H,W] ──VAE encoder──▶ x0 (app, struct)
 *   TorchCpuRng(seed): noise of app, then of struct ──▶ invert(x0) per image (cached as safetensors)
 *   ["", prompt] ──text encoder──▶ (uncond, cond) ──▶ method.run ──▶ out latent ──VAE decoder──▶ image
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { ddimSchedule } from '../diffusion/ddim-schedule.js';
import { AbortError, ImageError, invalidParameterError } from '../errors.js';
import { drawInversionNoise, guidedUNetNoise, invert, toInversionLatent, type GuidedNoise } from '../diffusion/inversion.js';
import { gridPng, imageSize, loadImage, loadMask, maskRasterToTensor, tensorToPng, type ImageSource, type Size } from '../io/image.js';
import { METHODS, type MethodName } from '../methods/index.js';
import type { BranchInversion, Correspondence, LatentMask } from '../methods/method.js';
import type { LatentDims } from '../methods/shared/adain.js';
import { builderFingerprint, weightsIdentity, type CacheLogEntry } from '../runtime/model-cache.js';
import { StableDiffusionModel } from '../runtime/stable-diffusion.js';
import type { UNetRunner } from '../runtime/unet-runner.js';
import { TorchCpuRng } from '../tensor/rng.js';
import { reshape, sliceFirst, type Tensor } from '../tensor/tensor.js';
import { inversionCacheKey, readCachedInversion, writeCachedInversion } from './inversion-cache.js';
import { DEFAULT_SAM_MODEL_ID, obtainModelSource, obtainSamModel, type DownloadProgress, type ModelSource, type ObtainModelOptions } from './model-source.js';
import { checkMaskPrompt, samMask, type MaskPrompt } from './sam-masks.js';
import { SamSegmenter } from './sam-segmenter.js';
import {
  optionsForMethod,
  SIZE_MULTIPLE,
  validateTransferOptions,
  workingSize,
  type Device,
  type Precision,
  type TransferOptions,
  type TransferOptionsInput,
} from './options.js';

export type Phase = 'inversion-app' | 'inversion-struct' | 'transfer' | 'decode';

export interface ProgressEvent {
  phase: Phase;
  step: number;
  total: number;
  /** Seconds left in this phase (estimated from its pace so far); undefined before the first step. */
  etaSeconds: number | undefined;
  /** True when the phase was served from the inversion cache. */
  cached?: boolean;
  /** The method of a 'transfer' / 'decode' phase (compare runs several). */
  method?: MethodName;
}

/** The result branch's latent after a transfer step (for cheap previews, e.g. a linear latent-to-RGB map). */
export interface LatentEvent {
  step: number;
  total: number;
  /** [1, C, h, w] in the model's latent space (VAE latent x scaling factor); a copy the callee may keep. */
  latent: Tensor<'float32'>;
}

export interface RunControls {
  onProgress?: (event: ProgressEvent) => void;
  /** Called after each transfer step with the current result latent. */
  onLatent?: (event: LatentEvent) => void;
  signal?: AbortSignal;
}

export interface LoadPipelineOptions {
  device?: Device;
  /** fp32 (default) or fp16: the UNet in float16 with float32 normalisations, softmax, timestep embedding and matching. */
  precision?: Precision;
  cacheDir?: string;
  onStatus?: (message: string) => void;
  /** Environment for the Hugging Face cache lookup and download (HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE; default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Progress of a model download from the Hugging Face Hub (only called when the model is not in the cache). */
  onDownload?: (p: DownloadProgress) => void;
  /** onnxruntime intra-op threads (default: one per physical core). */
  threads?: number;
  /**
   * onnxruntime's CPU memory arena. Off by default: the transfer's batch-6 UNet calls and the 512x512 VAE make the
   * arena keep gigabytes it rarely reuses (bench: 7.4 GB peak with it on); off costs no measurable speed.
   */
  memoryArena?: boolean;
  /**
   * Keep the sessions (text encoder, VAE, UNet, SAM-HQ) between transfers. Off by default: each is released as soon
   * as a transfer no longer needs it (the loop holds only the UNet, the decode only the VAE decoder), and rebuilt from
   * the graph cache when needed again (about a second each; the SD-1.5 UNet about 8 s); batch and server use turn it on.
   */
  keepSessions?: boolean;
  /**
   * SAM-HQ weights for masks from prompts (TransferOptions structureBox / ..., masks: 'sam'): a Hugging Face id
   * (downloaded when missing), a SamHQModel folder or an official .pth. Default DEFAULT_SAM_MODEL_ID; opened only
   * when a transfer asks for a SAM-HQ mask.
   */
  samModel?: string;
}

/** Matches of the finest processed layer at the last iteration that ran the matching. */
export type CorrespondenceMatches = Correspondence;

export interface TransferOutput {
  /** Decoded out latent, clamped to [-1, 1], [1, 3, H, W] at the working size. */
  image: Tensor<'float32'>;
  /** `image` as PNG (working size, the structure image's aspect). */
  png: Buffer;
  /** The inputs as the model saw them (resized); the masks are self-segmentation's (nearest-upscaled) with masks 'self-segmentation'. */
  structure: Tensor<'float32'>;
  appearance: Tensor<'float32'>;
  structureMask: Tensor<'float32'> | undefined;
  appearanceMask: Tensor<'float32'> | undefined;
  matches: CorrespondenceMatches | undefined;
  /** Seconds per phase (load, encode, text, inversion-app, inversion-struct, transfer, decode, total). */
  timings: Record<string, number>;
  metadata: TransferMetadata;
}

export interface TransferInputs {
  structure: ImageSource;
  appearance: ImageSource;
  /**
   * Eye-for-an-eye: correspondences from elsewhere (a better matcher, a previous run): for transfer iteration
   * `iteration` and processed attn1 `site`, the appearance token each structure token takes (row-major over the
   * site's token map; < 0 keeps the token). Return undefined to let the method's cosine argmax decide.
   */
  forcedMatches?: (iteration: number, site: string) => BigInt64Array | undefined;
}

/** The inputs at the working size, checked (prepareTransferInputs). */
export interface LoadedInputs {
  structureSize: Size;
  appearanceSize: Size;
  size: Size;
  structure: Tensor<'float32'>;
  appearance: Tensor<'float32'>;
  structureMask: Tensor<'float32'> | undefined;
  appearanceMask: Tensor<'float32'> | undefined;
  /** Images whose mask SAM-HQ makes (their prompts checked against the image), in the user's frame. */
  samPrompts: { structure?: MaskPrompt; appearance?: MaskPrompt };
}

/** The SAM-HQ prompt of one image, when its mask comes from SAM-HQ (a prompt given, or masks 'sam' and no file). */
function samPromptOf(options: TransferOptions, role: 'structure' | 'appearance'): MaskPrompt | undefined {
  const box = role === 'structure' ? options.structureBox : options.appearanceBox;
  const points = role === 'structure' ? options.structurePoints : options.appearancePoints;
  const file = role === 'structure' ? options.structureMask : options.appearanceMask;
  if (box !== undefined || points !== undefined) return { box, points };
  return options.masks === 'sam' && file === undefined ? {} : undefined;
}

interface InversionJob {
  role: 'app' | 'struct';
  /** The resized image (its pixels key the cache). */
  image: Tensor<'float32'>;
  x0: Tensor<'float32'>;
  noise: Float32Array[];
  predict: GuidedNoise;
  latentDims: LatentDims;
  /** The model's identity (computed once per transfer). */
  modelIdentity: unknown;
}

export interface TransferMetadata {
  options: TransferOptions;
  model: ModelSource & {
    /**
     * sha256 (first 16 hex digits) of the weights' identity: for every weights file its real path, size, mtime and
     * safetensors header digest (Hugging Face blobs are named by their content hash), plus the graph builder's code.
     */
    identityHash: string;
  };
  workingSize: Size;
  latentSize: Size;
  structureSize: Size;
  appearanceSize: Size;
  inversionCache: { app: 'hit' | 'miss'; struct: 'hit' | 'miss'; dir: string };
  /** The attn1 module paths where the method acted (the given hookSites, or the method's default ones). */
  hookSites: readonly string[];
  /** The cache folder (absolute), whether it could be written (when not: nothing was saved there) and why not. */
  cache: { dir: string; writable: boolean; notWritableReason?: string };
  /** Every graph this pipeline has asked of the graph cache so far, in order: taken from it (hit) or built. */
  graphCache: readonly CacheLogEntry[];
}

function describeSource(source: ImageSource, what: string): string {
  return typeof source === 'string' ? resolve(source) : `the ${what} buffer`;
}

/**
 * Whether a mask of `mask` pixels has the aspect ratio of its image (`image`): equal up to one pixel of rounding
 * (a scaled copy of a mask drawn on the image passes).
 */
export function sameAspect(mask: Size, image: Size): boolean {
  return Math.abs(mask.width * image.height - mask.height * image.width) <= Math.max(image.width, image.height, mask.width, mask.height);
}

/**
 * Both images (and masks) decoded, checked and resized to the working size (short side = size, long side from the
 * structure's aspect); nothing here touches a model, so the CLI runs it before loading one. A mask must have its
 * image's aspect ratio (an ImageError names both sizes); it is then resized exactly as its image is.
 */
export async function prepareTransferInputs(
  inputs: Pick<TransferInputs, 'structure' | 'appearance'>,
  options: TransferOptions,
  multiple: number = SIZE_MULTIPLE,
): Promise<LoadedInputs> {
  const { fit } = options;
  const structureSize = await imageSize(inputs.structure, { fit });
  const appearanceSize = await imageSize(inputs.appearance, { fit });
  if (options.size % multiple !== 0) throw invalidParameterError('size', `multiple of ${multiple} for this model`, options.size);
  // 'stretch' is the official load_size: every image to size x size.
  const size =
    fit === 'stretch' ? { width: options.size, height: options.size } : workingSize(options.size, structureSize.width, structureSize.height, multiple);
  const mask = async (source: ImageSource | undefined, role: 'structure' | 'appearance', image: ImageSource, imageSz: Size) => {
    if (source === undefined) return undefined;
    const loaded = await loadMask(source, size, { fit });
    const maskSize = await imageSize(source, { fit });
    if (!sameAspect(maskSize, imageSz)) {
      throw new ImageError(
        `${describeSource(source, `${role} mask`)}: the ${role} mask is ${maskSize.width}x${maskSize.height} but the ${role} image ${describeSource(image, `${role} image`)} is ${imageSz.width}x${imageSz.height}; a mask must have its image's aspect ratio`,
        { hint: `use a mask drawn on the ${role} image (the same size, or the same picture scaled)` },
      );
    }
    return loaded;
  };
  // SAM-HQ prompts are pixels of the oriented image file (sam-masks.ts), checked here, before any model.
  const samPrompts: LoadedInputs['samPrompts'] = {};
  for (const [role, source] of [
    ['structure', inputs.structure],
    ['appearance', inputs.appearance],
  ] as const) {
    const prompt = samPromptOf(options, role);
    if (prompt === undefined) continue;
    checkMaskPrompt(prompt, await imageSize(source, { fit: 'cover' }), `${role} image ${describeSource(source, `${role} image`)}`, {
      box: `${role}Box`,
      points: `${role}Points`,
    });
    samPrompts[role] = prompt;
  }
  return {
    samPrompts,
    structureSize,
    appearanceSize,
    size,
    structure: await loadImage(inputs.structure, size, { fit }),
    appearance: await loadImage(inputs.appearance, size, { fit }),
    structureMask: await mask(options.structureMask, 'structure', inputs.structure, structureSize),
    appearanceMask: await mask(options.appearanceMask, 'appearance', inputs.appearance, appearanceSize),
  };
}

/** A latent-size 0/1 mask, nearest-upscaled to the working size (each latent pixel covers a block of pixels). */
function upscaleMask(mask: LatentMask, size: Size): Tensor<'float32'> {
  const data = new Float32Array(size.width * size.height);
  for (let y = 0; y < size.height; y++) {
    const my = Math.min(mask.height - 1, Math.floor((y * mask.height) / size.height));
    for (let x = 0; x < size.width; x++)
      data[y * size.width + x] = mask.data[my * mask.width + Math.min(mask.width - 1, Math.floor((x * mask.width) / size.width))]!;
  }
  return { dtype: 'float32', dims: [size.height, size.width], data };
}

/** Seconds since `start` (performance.now()). */
const since = (start: number): number => (performance.now() - start) / 1000;

function progressReporter(phase: Phase, onProgress: RunControls['onProgress'], method?: MethodName): (step: number, total: number) => void {
  const start = performance.now();
  return (step, total) => {
    const elapsed = since(start);
    onProgress?.({ phase, step, total, etaSeconds: step > 0 ? (elapsed / step) * (total - step) : undefined, ...(method === undefined ? {} : { method }) });
  };
}

/** The options an inversion depends on: every method of one compare must agree on them. */
const INVERSION_KEYS = [
  'prompt',
  'numSteps',
  'inversionGuidance',
  'seed',
  'size',
  'fit',
  'structureMask',
  'appearanceMask',
  'structureBox',
  'appearanceBox',
  'structurePoints',
  'appearancePoints',
] as const satisfies readonly (keyof TransferOptions)[];

/** Options of a compare: TransferOptions without the method (each method's defaults fill the rest). */
export type CompareOptionsInput = Omit<TransferOptionsInput, 'method'>;

export interface CompareOutput {
  /** Each method's transfer (the inversions are shared: their timings appear in both). */
  results: Readonly<Record<MethodName, TransferOutput>>;
  /** structure | appearance | Eye-for-an-eye | Cross-Image Attention, as PNG. */
  png: Buffer;
}

function latentReporter(
  report: (step: number, total: number) => void,
  dims: readonly number[],
  onLatent: RunControls['onLatent'],
): (step: number, total: number, latent?: Float32Array) => void {
  return (step, total, latent) => {
    report(step, total);
    if (onLatent !== undefined && latent !== undefined) onLatent({ step, total, latent: { dtype: 'float32', dims, data: Float32Array.from(latent) } });
  };
}

export class TransferPipeline {
  private readonly unetRunners = new Map<string, Promise<UNetRunner>>();

  constructor(
    readonly source: ModelSource,
    readonly model: StableDiffusionModel,
    /** Keep the encoders' and the decoder's sessions between transfers (faster repeats, more memory held). */
    private readonly keepSessions = false,
    /** Told what the pipeline does in place of what was asked (e.g. an inversion that could not be cached). */
    private readonly onStatus?: (message: string) => void,
    private readonly samOptions: { model: string; env?: NodeJS.ProcessEnv; device?: Device } = { model: DEFAULT_SAM_MODEL_ID },
  ) {}

  private segmenter: Promise<SamSegmenter> | undefined;

  /** The SAM-HQ segmenter, opened (and downloaded) on first use. */
  private sam(): Promise<SamSegmenter> {
    this.segmenter ??= (async () => {
      const source = await obtainSamModel(this.samOptions.model, this.samOptions.env === undefined ? {} : { env: this.samOptions.env });
      return SamSegmenter.open(source.path, {
        cacheDir: this.cacheDir,
        ...(this.samOptions.device === undefined ? {} : { device: this.samOptions.device }),
        ...(this.onStatus === undefined ? {} : { onStatus: this.onStatus }),
      });
    })();
    this.segmenter.catch(() => (this.segmenter = undefined));
    return this.segmenter;
  }

  /** SAM-HQ masks of the images that ask for one, at the working size (the images' geometry). */
  private async samMasks(
    inputs: TransferInputs,
    options: TransferOptions,
    loaded: LoadedInputs,
  ): Promise<Partial<Record<'structure' | 'appearance', Tensor<'float32'>>>> {
    const masks: Partial<Record<'structure' | 'appearance', Tensor<'float32'>>> = {};
    for (const role of ['structure', 'appearance'] as const) {
      const prompt = loaded.samPrompts[role];
      if (prompt === undefined) continue;
      const source = role === 'structure' ? inputs.structure : inputs.appearance;
      const what = `the ${role} image ${describeSource(source, `${role} image`)}`;
      const result = await samMask(await this.sam(), source, prompt, options.fit, what);
      masks[role] = maskRasterToTensor(result.mask, loaded.size, options.fit, `SAM-HQ mask of ${what}`);
    }
    if (!this.keepSessions && this.segmenter !== undefined) {
      const segmenter = await this.segmenter;
      this.segmenter = undefined;
      await segmenter.close();
    }
    return masks;
  }

  /** Where built graphs and inversions are cached. */
  get cacheDir(): string {
    return this.model.cache.root;
  }

  /** Pixels per working-size step: VAE factor x UNet downsampling (SD: 8 x 8 = 64). */
  get sizeMultiple(): number {
    const vae = 2 ** (this.model.vaeConfig.blockOutChannels.length - 1);
    return vae * 2 ** (this.model.unetConfig.downBlockTypes.length - 1);
  }

  private unet(options: TransferOptions): Promise<UNetRunner> {
    const variant = METHODS[options.method].unet(this.model.unetConfig, options);
    const key = JSON.stringify({ freeu: variant.freeu, processors: variant.processors?.key ?? null });
    let runner = this.unetRunners.get(key);
    if (runner === undefined) {
      runner = this.model.unet(variant);
      runner.catch(() => this.unetRunners.delete(key));
      this.unetRunners.set(key, runner);
    }
    return runner;
  }

  private modelIdentity(): unknown {
    const weights = (['vae', 'text_encoder', 'unet'] as const).map((c) => this.model.componentWeights(c).files.map(weightsIdentity));
    return { root: realpathSync(this.model.root), weights, code: builderFingerprint(), freeu: true };
  }

  /** Both images (and masks) at the working size: short side = size, long side from the structure's aspect (fit 'stretch': square). */
  private loadInputs(inputs: TransferInputs, options: TransferOptions): Promise<LoadedInputs> {
    return prepareTransferInputs(inputs, options, this.sizeMultiple);
  }

  /** Invert one image, or take its inversion from the cache. */
  private async invertCached(job: InversionJob, options: TransferOptions, controls: RunControls): Promise<{ inv: BranchInversion; hit: boolean }> {
    const phase: Phase = job.role === 'app' ? 'inversion-app' : 'inversion-struct';
    const [c, h, w] = job.latentDims;
    const key = inversionCacheKey({
      pixels: job.image.data,
      model: job.modelIdentity,
      numSteps: options.numSteps,
      guidance: options.inversionGuidance,
      prompt: options.prompt,
      seed: options.seed,
      role: job.role,
      width: job.image.dims[3]!,
      height: job.image.dims[2]!,
    });
    const cached = readCachedInversion(this.cacheDir, key, options.numSteps, c * h * w);
    if (cached !== undefined) {
      controls.onProgress?.({ phase, step: options.numSteps, total: options.numSteps, etaSeconds: 0, cached: true });
      return { inv: cached, hit: true };
    }
    const result = await invert(job.x0, ddimSchedule(this.model.schedulerConfig), job.predict, {
      numSteps: options.numSteps,
      guidanceScale: options.inversionGuidance,
      noise: job.noise,
      onStep: progressReporter(phase, controls.onProgress),
      signal: controls.signal,
    });
    if (!this.model.cache.writable) return { inv: result, hit: false };
    try {
      writeCachedInversion(this.cacheDir, key, result, job.latentDims, {
        prompt: options.prompt,
        seed: String(options.seed),
        numSteps: String(options.numSteps),
        guidance: String(options.inversionGuidance),
        role: job.role,
        size: `${job.image.dims[3]}x${job.image.dims[2]}`,
      });
    } catch (e) {
      // The inversion is computed; a full disk only costs the next run its reuse.
      this.onStatus?.(
        `could not save the ${job.role} inversion to the cache (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); continuing without it`,
      );
    }
    return { inv: result, hit: false };
  }

  /**
   * Appearance transfer: the structure image's layout with the appearance image's look. `options` is validated
   * here (device and cacheDir are the pipeline's own and are ignored at this point).
   */
  async transfer(inputs: TransferInputs, optionsInput: TransferOptionsInput, controls: RunControls = {}): Promise<TransferOutput> {
    const [result] = await this.transfers(inputs, [validateTransferOptions(optionsInput)], controls);
    return result!;
  }

  /**
   * Both methods side by side from the same inversions (the costly shared part): Eye-for-an-eye and Cross-Image
   * Attention on the same inputs, plus one picture structure | appearance | Eye-for-an-eye | Cross-Image Attention.
   * The options apply to both, each method's own defaults filling the rest (guidanceScale is Eye-for-an-eye's only:
   * Cross-Image Attention runs without classifier-free guidance).
   */
  async compare(inputs: TransferInputs, optionsInput: CompareOptionsInput, controls: RunControls = {}): Promise<CompareOutput> {
    if ('method' in optionsInput)
      throw invalidParameterError('method', 'no method (compare runs every method)', optionsInput['method' as keyof CompareOptionsInput]);
    const e4e = validateTransferOptions(optionsForMethod(optionsInput, 'eye-for-an-eye'));
    const cia = validateTransferOptions(optionsForMethod(optionsInput, 'cia'));
    const [e4eResult, ciaResult] = await this.transfers(inputs, [e4e, cia], controls);
    const png = await gridPng([
      { image: e4eResult!.structure, label: 'structure' },
      { image: e4eResult!.appearance, label: 'appearance' },
      { image: e4eResult!.image, label: 'Eye-for-an-eye' },
      { image: ciaResult!.image, label: 'Cross-Image Attention' },
    ]);
    return { results: { 'eye-for-an-eye': e4eResult!, cia: ciaResult! }, png };
  }

  /**
   * One or more methods on the same inputs: loading, encoding, text and inversion once (with the first method's
   * UNet, processors neutral: every method's neutral UNet is the plain FreeU UNet), then each method's loop and
   * decode. The options must agree on everything the inversion depends on.
   */
  private async transfers(inputs: TransferInputs, optionsList: readonly TransferOptions[], controls: RunControls): Promise<TransferOutput[]> {
    const options = optionsList[0]!;
    for (const other of optionsList.slice(1)) {
      for (const key of INVERSION_KEYS) {
        if (JSON.stringify(other[key]) !== JSON.stringify(options[key])) {
          throw invalidParameterError(key, `${JSON.stringify(options[key])} for every method of a shared inversion`, other[key]);
        }
      }
    }
    const checkAbort = (): void => {
      if (controls.signal?.aborted === true) throw new AbortError('transfer aborted');
    };
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, fn: () => Promise<T>, into: Record<string, number> = timings): Promise<T> => {
      const start = performance.now();
      const value = await fn();
      into[name] = since(start);
      checkAbort();
      return value;
    };
    const t0 = performance.now();
    const loaded = await timed('load', () => this.loadInputs(inputs, options));
    const { size, structure, appearance } = loaded;
    let { structureMask, appearanceMask } = loaded;
    if (loaded.samPrompts.structure !== undefined || loaded.samPrompts.appearance !== undefined) {
      const sam = await timed('masks', () => this.samMasks(inputs, options, loaded));
      structureMask = sam.structure ?? structureMask;
      appearanceMask = sam.appearance ?? appearanceMask;
    }
    const sf = this.model.vaeConfig.scalingFactor;
    const [x0App, x0Struct] = await timed('encode', async () => [
      toInversionLatent(await this.model.encodeImage(appearance), sf),
      toInversionLatent(await this.model.encodeImage(structure), sf),
    ]);
    const [, c, lh, lw] = x0App.dims as [number, number, number, number];
    const latentDims: LatentDims = [c, lh, lw];
    const text = await timed('text', () => this.model.encodeText(['', options.prompt])); // [2, 77, C]
    // The loop needs only the UNet: the encoders' memory goes back before it (rebuilt from the graph cache next time).
    if (!this.keepSessions) await this.model.release('vae_encoder', 'text_encoder');
    const predict = guidedUNetNoise(await this.unet(options), text);
    const modelIdentity = this.modelIdentity();

    // Noise for both images first (app, then struct, from one seeded generator), so a cache hit on one image
    // leaves the other's draws unchanged.
    const rng = new TorchCpuRng(options.seed);
    const noiseApp = drawInversionNoise(rng, options.numSteps, c * lh * lw);
    const noiseStruct = drawInversionNoise(rng, options.numSteps, c * lh * lw);
    const job = { predict, latentDims, modelIdentity };
    const app = await timed('inversion-app', () =>
      this.invertCached({ ...job, role: 'app', image: appearance, x0: x0App, noise: noiseApp }, options, controls),
    );
    const struct = await timed('inversion-struct', () =>
      this.invertCached({ ...job, role: 'struct', image: structure, x0: x0Struct, noise: noiseStruct }, options, controls),
    );
    const shared = { ...timings };
    const sharedSeconds = since(t0);
    const outputs: TransferOutput[] = [];
    for (const [index, methodOptions] of optionsList.entries()) {
      // progress events name the method when several run
      const tag = optionsList.length > 1 ? methodOptions.method : undefined;
      const own: Record<string, number> = { ...shared };
      const t1 = performance.now();
      const unet = await this.unet(methodOptions);
      const method = METHODS[methodOptions.method];
      const run = await timed(
        'transfer',
        () =>
          method.run(
            {
              unet,
              schedule: ddimSchedule(this.model.schedulerConfig),
              app: app.inv,
              struct: struct.inv,
              latentDims,
              embeddings: {
                uncond: reshape(sliceFirst(text, 0), [1, ...text.dims.slice(1)]),
                cond: reshape(sliceFirst(text, 1), [1, ...text.dims.slice(1)]),
              },
              structureMask,
              appearanceMask,
              onStep: latentReporter(progressReporter('transfer', controls.onProgress, tag), [1, c, lh, lw], controls.onLatent),
              signal: controls.signal,
            },
            { ...methodOptions, forcedMatches: inputs.forcedMatches },
          ),
        own,
      );
      Object.assign(own, run.timings ?? {});
      // Masks the method computed (self-segmentation) are reported like given ones: 0/1 at the working size.
      const computed =
        run.masks === undefined ? undefined : { structure: upscaleMask(run.masks.structure, size), appearance: upscaleMask(run.masks.appearance, size) };
      const { image, png } = await timed(
        'decode',
        async () => {
          controls.onProgress?.({ phase: 'decode', step: 0, total: 1, etaSeconds: undefined, ...(tag === undefined ? {} : { method: tag }) });
          // After the last loop the UNet is not needed: its weights and arena go back before the VAE decoder's
          // 512x512 activations come (the e2e peak), and the next transfer rebuilds its session from the graph cache.
          if (!this.keepSessions && index === optionsList.length - 1) {
            this.unetRunners.clear();
            await this.model.release(...this.model.openSessions.filter((name) => name.startsWith('unet')));
          }
          const decoded = await this.model.decodeLatent({ dtype: 'float32', dims: [1, c, lh, lw], data: run.latents[0]! });
          if (!this.keepSessions) await this.model.release('vae_decoder');
          const clamped: Tensor<'float32'> = { dtype: 'float32', dims: decoded.dims, data: decoded.data.map((v) => Math.min(Math.max(v, -1), 1)) };
          const encoded = await tensorToPng(clamped);
          controls.onProgress?.({ phase: 'decode', step: 1, total: 1, etaSeconds: 0, ...(tag === undefined ? {} : { method: tag }) });
          return { image: clamped, png: encoded };
        },
        own,
      );
      // total: the shared part plus this method's own (for the first method, everything up to here)
      own['total'] = sharedSeconds + since(t1);
      outputs.push({
        image,
        png,
        structure,
        appearance,
        structureMask: structureMask ?? computed?.structure,
        appearanceMask: appearanceMask ?? computed?.appearance,
        matches: run.correspondence,
        timings: own,
        metadata: {
          options: methodOptions,
          model: { ...this.source, identityHash: createHash('sha256').update(JSON.stringify(modelIdentity)).digest('hex').slice(0, 16) },
          workingSize: size,
          latentSize: { width: lw, height: lh },
          structureSize: loaded.structureSize,
          appearanceSize: loaded.appearanceSize,
          inversionCache: { app: app.hit ? 'hit' : 'miss', struct: struct.hit ? 'hit' : 'miss', dir: this.cacheDir },
          hookSites: [...unet.info.processed],
          cache: {
            dir: this.cacheDir,
            writable: this.model.cache.writable,
            ...(this.model.cache.notWritableReason === undefined ? {} : { notWritableReason: this.model.cache.notWritableReason }),
          },
          graphCache: [...this.model.cache.log],
        },
      });
    }
    return outputs;
  }

  async dispose(): Promise<void> {
    const segmenter = this.segmenter;
    this.segmenter = undefined;
    if (segmenter !== undefined) await (await segmenter.catch(() => undefined))?.close();
    await this.model.dispose();
  }
}

/**
 * Open a model for transfers: a local diffusers folder, or a Hugging Face id taken from the local HF cache or
 * downloaded into it (see model-source.ts). Graphs are built (or taken from the cache) on first use.
 */
export async function loadPipeline(modelDirOrHubId: string, options: LoadPipelineOptions = {}): Promise<TransferPipeline> {
  const obtain: ObtainModelOptions = {};
  if (options.env !== undefined) obtain.env = options.env;
  if (options.onDownload !== undefined) obtain.onDownload = options.onDownload;
  const source = await obtainModelSource(modelDirOrHubId, obtain);
  const modelOptions: Parameters<typeof StableDiffusionModel.open>[1] = {};
  if (options.device !== undefined) modelOptions.device = options.device;
  if (options.precision !== undefined) modelOptions.precision = options.precision;
  if (options.cacheDir !== undefined) modelOptions.cacheDir = options.cacheDir;
  if (options.onStatus !== undefined) modelOptions.onStatus = options.onStatus;
  if (options.threads !== undefined) {
    if (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 1024)
      throw invalidParameterError('threads', 'integer between 1 and 1024', options.threads);
    modelOptions.threads = options.threads;
  }
  modelOptions.memoryArena = options.memoryArena ?? false;
  const model = StableDiffusionModel.open(source.path, modelOptions);
  const cache = model.cache;
  if (!cache.writable) {
    options.onStatus?.(
      `the cache folder ${cache.root} cannot be written (${cache.notWritableReason ?? 'unknown reason'}); running without caching: graphs are built into a temporary folder removed at the end, and inversions are not saved`,
    );
  }
  if (cache.removedStale.length > 0)
    options.onStatus?.(
      `removed ${cache.removedStale.length} stale temporary cache entr${cache.removedStale.length === 1 ? 'y' : 'ies'} left by interrupted runs`,
    );
  // Open the weights now so that a broken model folder fails here, not halfway through a run.
  try {
    for (const c of ['vae', 'text_encoder', 'unet'] as const) model.componentWeights(c);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  const sam = {
    model: options.samModel ?? DEFAULT_SAM_MODEL_ID,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.device === undefined ? {} : { device: options.device }),
  };
  return new TransferPipeline(source, model, options.keepSessions ?? false, options.onStatus, sam);
}
