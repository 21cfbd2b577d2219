/**
 * The golden runner's ONE adapter onto the model / UNet / method API (runtime, diffusion, methods). Group runners
 * call only these functions and the types declared here, so porting the runner to another model or method API means
 * rewriting this file alone. Everything here takes and returns plain tensors / typed arrays.
 */
import { ddimSchedule } from '../diffusion/ddim-schedule.js';
import { guidedUNetNoise, invert, toInversionLatent } from '../diffusion/inversion.js';
import { e4eFeeds, injectionSlots, matchesOf, type Injection } from '../methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../methods/eye-for-an-eye/index.js';
import { runE4ELoop } from '../methods/eye-for-an-eye/loop.js';
import { injectionMode, type StepRange } from '../methods/eye-for-an-eye/schedule.js';
import { ciaFeeds, CIA_OUTPUT, floatOutput, NO_SWAP } from '../methods/cross-image-attention/controls.js';
import { ciaUNetVariant, segmentationSource, swapSitesOf } from '../methods/cross-image-attention/index.js';
import { runCIALoop, type LatentMasks } from '../methods/cross-image-attention/loop.js';
import { kvSource, type SwapRanges } from '../methods/cross-image-attention/schedule.js';
import { downMask } from '../methods/shared/masks.js';
import {
  SEGMENTATION_FITS,
  SEGMENTATION_MAP_NAMES,
  segmentationFeeds,
  segmentationOutput,
  selfSegment,
  withSegmentationMaps,
  type ImageSegmentationMaps,
  type SegmentationMapName,
  type SelfSegmentation,
  type SelfSegmentationOptions,
} from '../methods/shared/self-segmentation/index.js';
import { StableDiffusionModel, type ModelOptions } from '../runtime/stable-diffusion.js';
import type { UNetRunner } from '../runtime/unet-runner.js';
import { reshape, sliceFirst, type Tensor } from '../tensor/tensor.js';

/** How the model is opened (device, threads, graph cache folder, ...). */
export type EngineOptions = ModelOptions;

/** Model facts the input resolver checks candidate tensors against. */
export interface ModelFacts {
  readonly unetInChannels: number;
  readonly unetOutChannels: number;
  /** Context widths D of the cross-attention (one entry unless the config lists per-block values). */
  readonly crossAttentionDims: readonly number[];
  readonly vaeInChannels: number;
  readonly latentChannels: number;
  /** Image size / latent size (SD: 8). */
  readonly vaeDownscale: number;
  /** The VAE config's scaling_factor. */
  readonly vaeScalingFactor: number;
}

/** An opened model. Opaque to the groups: pass it to the functions below. */
export interface GoldenEngine {
  readonly facts: ModelFacts;
}

interface EngineImpl extends GoldenEngine {
  readonly model: StableDiffusionModel;
}

function impl(engine: GoldenEngine): StableDiffusionModel {
  return (engine as EngineImpl).model;
}

export type { StepRange };
export type InjectionKind = Injection;

/** The method's UNet with processors at `sites` (the method's own default sites when undefined). */
function e4eUNet(engine: GoldenEngine, sites: readonly string[] | undefined): Promise<UNetRunner> {
  const model = impl(engine);
  return model.unet(e4eUNetVariant(model.unetConfig, sites));
}

/** Open the case's model folder (nothing is built until used). */
export function openEngine(modelDir: string, options: EngineOptions = {}): GoldenEngine {
  const model = StableDiffusionModel.open(modelDir, options);
  const u = model.unetConfig;
  const v = model.vaeConfig;
  const cross = typeof u.crossAttentionDim === 'number' ? [u.crossAttentionDim] : [...new Set(u.crossAttentionDim)];
  const facts: ModelFacts = {
    unetInChannels: u.inChannels,
    unetOutChannels: u.outChannels,
    crossAttentionDims: cross,
    vaeInChannels: v.inChannels,
    latentChannels: v.latentChannels,
    vaeDownscale: 2 ** Math.max(0, v.blockOutChannels.length - 1),
    vaeScalingFactor: v.scalingFactor,
  };
  const engine: EngineImpl = { facts, model };
  return engine;
}

/** Release every session and weights file. */
export async function closeEngine(engine: GoldenEngine): Promise<void> {
  await impl(engine).dispose();
}

/** CLIP token ids [n, 77] (int64) of the prompts. */
export function tokenize(engine: GoldenEngine, prompts: readonly string[]): Tensor<'int64'> {
  return impl(engine).tokenize(prompts);
}

/** Text encoder last_hidden_state [n, T, D] of the prompts. */
export function encodeText(engine: GoldenEngine, prompts: readonly string[]): Promise<Tensor<'float32'>> {
  return impl(engine).encodeText(prompts);
}

/** Image [B, 3, H, W] in [-1, 1] -> latent mean [B, C, H/f, W/f] scaled by the VAE config's scaling_factor. */
export function encodeImage(engine: GoldenEngine, image: Tensor<'float32'>): Promise<Tensor<'float32'>> {
  return impl(engine).encodeImage(image);
}

/** Latent [B, C, h, w] scaled by the config's scaling_factor -> raw decoded image [B, 3, fh, fw]. */
export function decodeLatent(engine: GoldenEngine, latent: Tensor<'float32'>): Promise<Tensor<'float32'>> {
  return impl(engine).decodeLatent(latent);
}

/** The DDIM scheduler tables of the model's scheduler config. */
export function schedulerTables(engine: GoldenEngine): {
  alphasCumprod: Float32Array;
  finalAlphaCumprod: number;
  numTrainTimesteps: number;
  timesteps(steps: number): number[];
} {
  const s = ddimSchedule(impl(engine).schedulerConfig);
  return { alphasCumprod: s.alphasCumprod, finalAlphaCumprod: s.finalAlphaCumprod, numTrainTimesteps: s.numTrainTimesteps, timesteps: (n) => s.timesteps(n) };
}

/** The attn1 module paths the method acts at by default for this UNet (as the built graph reports them). */
export async function defaultSites(engine: GoldenEngine): Promise<string[]> {
  return [...(await e4eUNet(engine, undefined)).info.processed];
}

/** One call of the stock UNet (FreeU on or off, no method hooks) -> noise prediction [B, C, h, w]. */
export async function unetForward(
  engine: GoldenEngine,
  call: { freeu: boolean; sample: Tensor<'float32'>; timestep: number; encoderHiddenStates: Tensor<'float32'> },
): Promise<Tensor<'float32'>> {
  const unet = await impl(engine).unet({ freeu: call.freeu });
  return (await unet.call({ sample: call.sample, timestep: call.timestep, encoderHiddenStates: call.encoderHiddenStates })).noise;
}

/**
 * One call of the method's UNet (FreeU on, hooks at `sites`) at the reference's `model.step` counter: the attention
 * rule follows from the step and feat_range; the batch is the official CFG batch of 6 or the batch of 3.
 */
export async function e4eForward(
  engine: GoldenEngine,
  call: {
    sites: readonly string[];
    modelStep: number;
    featRange: StepRange;
    injection: InjectionKind;
    sample: Tensor<'float32'>;
    timestep: number;
    encoderHiddenStates: Tensor<'float32'>;
    maskStruct?: Tensor<'float32'> | undefined;
    maskApp?: Tensor<'float32'> | undefined;
  },
): Promise<{ noise: Tensor<'float32'>; matches: Readonly<Record<string, BigInt64Array>>; mode: string }> {
  const mode = injectionMode(call.modelStep, call.featRange, call.injection);
  const batch = call.sample.dims[0]!;
  const unet = await e4eUNet(engine, call.sites);
  const feeds = e4eFeeds({ mode, slots: injectionSlots(batch === 6), maskStruct: call.maskStruct, maskApp: call.maskApp }, unet.info.processed, batch);
  const result = await unet.call({ sample: call.sample, timestep: call.timestep, encoderHiddenStates: call.encoderHiddenStates, feeds });
  return { noise: result.noise, matches: matchesOf(result.outputs, unet.info.processed), mode };
}

/**
 * The reference's edit-friendly DDPM inversion of one image [1, 3, H, W] in [-1, 1]: encoded at the fixed 0.18215,
 * with the given noise draws (noise[i] belongs to timesteps[i]) and the FreeU UNet with the method's hooks neutral.
 */
export async function invertImage(
  engine: GoldenEngine,
  options: {
    image: Tensor<'float32'>;
    noise: readonly Float32Array[];
    prompt: string;
    numSteps: number;
    guidanceScale: number;
    sites: readonly string[];
  },
): Promise<{ xts: Float32Array[]; zs: Float32Array[]; latentDims: [number, number, number] }> {
  const model = impl(engine);
  const x0 = toInversionLatent(await model.encodeImage(options.image), model.vaeConfig.scalingFactor);
  const predict = guidedUNetNoise(await e4eUNet(engine, options.sites), await model.encodeText(['', options.prompt]));
  const result = await invert(x0, ddimSchedule(model.schedulerConfig), predict, {
    numSteps: options.numSteps,
    guidanceScale: options.guidanceScale,
    noise: options.noise,
  });
  const [, c, h, w] = x0.dims as [number, number, number, number];
  return { xts: result.xts, zs: result.zs, latentDims: [c, h, w] };
}

export interface TransferRun {
  /** Final latents [out, style, struct]. */
  latents: Float32Array[];
  timesteps: number[];
  /** model.step seen by the UNet at each iteration. */
  modelSteps: number[];
  /** Per iteration: guided noise and latents (after the step and AdaIN) of [out, style, struct]. */
  noisePred: Float32Array[][];
  iterationLatents: Float32Array[][];
  /** Out latent before AdaIN, for the iterations with AdaIN. */
  latent0BeforeAdain: Float32Array[];
  /** Per site, per iteration: the style token of every out token (-1 skipped, -2 no matching). */
  matches: Record<string, BigInt64Array[]>;
}

/**
 * The method's denoising loop from inverted latents (xts) and noise maps (zs) of both images, with the prompt's
 * embeddings, the matching masks (image size) and AdaIN masks (latent size, absent = plain AdaIN). `forced(i)` gives
 * the match indices to impose at iteration i (undefined = natural argmax).
 */
export async function transferLoop(
  engine: GoldenEngine,
  options: {
    app: { xts: readonly Float32Array[]; zs: readonly Float32Array[] };
    struct: { xts: readonly Float32Array[]; zs: readonly Float32Array[] };
    latentDims: readonly [number, number, number];
    prompt: string;
    sites: readonly string[];
    numSteps: number;
    skip: number;
    guidanceScale: number;
    featRange: StepRange;
    adainRange: StepRange;
    injection: InjectionKind;
    maskStruct?: Tensor<'float32'> | undefined;
    maskApp?: Tensor<'float32'> | undefined;
    adainMaskStruct?: Float32Array | undefined;
    adainMaskApp?: Float32Array | undefined;
    forced?: ((iteration: number) => Readonly<Record<string, BigInt64Array>> | undefined) | undefined;
  },
): Promise<TransferRun> {
  const model = impl(engine);
  const unet = await e4eUNet(engine, options.sites);
  const emb = await model.encodeText(['', options.prompt]); // [2, T, D]
  const row = (i: number): Tensor<'float32'> => reshape(sliceFirst(emb, i), [1, ...emb.dims.slice(1)]);
  const { adainMaskStruct: structure, adainMaskApp: appearance } = options;
  const { latents, trace } = await runE4ELoop(
    {
      unet,
      schedule: ddimSchedule(model.schedulerConfig),
      app: options.app,
      struct: options.struct,
      latentDims: options.latentDims,
      embeddings: { uncond: row(0), cond: row(1) },
      structureMask: options.maskStruct,
      appearanceMask: options.maskApp,
    },
    {
      numSteps: options.numSteps,
      skip: options.skip,
      guidanceScale: options.guidanceScale,
      featRange: options.featRange,
      adainRange: options.adainRange,
      injection: options.injection,
      adainMasks: structure !== undefined && appearance !== undefined ? { structure, appearance } : undefined,
      forcedMatches: options.forced,
    },
  );
  return {
    latents,
    timesteps: trace.timesteps,
    modelSteps: trace.modelSteps,
    noisePred: trace.noisePred,
    iterationLatents: trace.latents,
    latent0BeforeAdain: trace.latent0BeforeAdain,
    matches: trace.matches,
  };
}

/** The reference's mask_down: an [H, W] mask resized bilinearly (align_corners=False) to h x w. */
export function adainMask(mask: Tensor<'float32'>, h: number, w: number): Float32Array {
  return downMask(mask, h, w);
}

export type { SwapRanges, LatentMasks };

/** Cross-Image Attention's UNet (FreeU, K/V-swap processors; recording sites and probes as asked). */
function ciaUNet(engine: GoldenEngine, options: { record: boolean; probeSites?: readonly string[] | undefined }): Promise<UNetRunner> {
  const model = impl(engine);
  return model.unet(ciaUNetVariant(model.unetConfig, options));
}

/**
 * One call of Cross-Image Attention's UNet on a batch [out, style, struct] at the reference's `model.step`: with
 * `performSwap` the out row of each swap site attends to the row the schedule gives (ranges, refresh steps), with
 * its map contrasted; `probeSites` return the out row's map before / after the contrast [H, S, S].
 */
export async function ciaForward(
  engine: GoldenEngine,
  call: {
    modelStep: number;
    ranges: SwapRanges;
    contrastStrength: number;
    performSwap: boolean;
    sample: Tensor<'float32'>;
    timestep: number;
    encoderHiddenStates: Tensor<'float32'>;
    probeSites?: readonly string[] | undefined;
  },
): Promise<{ noise: Tensor<'float32'>; swapped: string[]; probes: Record<string, { pre: Tensor<'float32'>; post: Tensor<'float32'> }> }> {
  const unet = await ciaUNet(engine, { record: false, probeSites: call.probeSites });
  const sites = swapSitesOf(unet);
  const kv = Object.fromEntries(sites.map((s) => [s.modulePath, call.performSwap ? kvSource(s.level, call.modelStep, call.ranges) : NO_SWAP]));
  const feeds = ciaFeeds(
    { kv, contrast: call.contrastStrength },
    sites.map((s) => s.modulePath),
    call.sample.dims[0]!,
  );
  const result = await unet.call({ sample: call.sample, timestep: call.timestep, encoderHiddenStates: call.encoderHiddenStates, feeds });
  const probes: Record<string, { pre: Tensor<'float32'>; post: Tensor<'float32'> }> = {};
  for (const site of call.probeSites ?? []) {
    probes[site] = { pre: floatOutput(result.outputs, CIA_OUTPUT.probePre(site)), post: floatOutput(result.outputs, CIA_OUTPUT.probePost(site)) };
  }
  return { noise: result.noise, swapped: Object.keys(kv).filter((k) => kv[k] !== NO_SWAP), probes };
}

export interface CIATransferRun {
  latents: Float32Array[];
  timesteps: number[];
  modelSteps: number[];
  swapStrengths: number[];
  guidanceApplied: boolean[];
  noisePredSwap: Float32Array[][];
  noisePredNoSwap: Float32Array[][];
  noisePred: Float32Array[][];
  iterationLatents: Float32Array[][];
  latent0BeforeAdain: Float32Array[];
  masks: LatentMasks | undefined;
}

/**
 * Cross-Image Attention's denoising loop from inverted latents (xts) and noise maps (zs) of both images. Masked
 * AdaIN takes `masks` (latent size: the golden's forced masks), or with `selfSegmentation` computes them from the
 * maps recorded at adain_range.start - 1 (the prompt's `objectNoun`); neither: plain AdaIN.
 */
export async function ciaTransferLoop(
  engine: GoldenEngine,
  options: {
    app: { xts: readonly Float32Array[]; zs: readonly Float32Array[] };
    struct: { xts: readonly Float32Array[]; zs: readonly Float32Array[] };
    latentDims: readonly [number, number, number];
    prompt: string;
    numSteps: number;
    skip: number;
    ranges: SwapRanges;
    adainRange: StepRange;
    swapGuidanceScale: number;
    contrastStrength: number;
    masks?: LatentMasks | undefined;
    selfSegmentation?: { objectNoun: string } | undefined;
  },
): Promise<CIATransferRun> {
  const model = impl(engine);
  const seg = options.masks === undefined ? options.selfSegmentation : undefined;
  const unet = await ciaUNet(engine, { record: seg !== undefined });
  const emb = await model.encodeText(['', options.prompt]); // [2, T, D]
  const row = (i: number): Tensor<'float32'> => reshape(sliceFirst(emb, i), [1, ...emb.dims.slice(1)]);
  const latent = { height: options.latentDims[1], width: options.latentDims[2] };
  const { latents, trace } = await runCIALoop(
    {
      unet,
      schedule: ddimSchedule(model.schedulerConfig),
      app: options.app,
      struct: options.struct,
      latentDims: options.latentDims,
      embeddings: { uncond: row(0), cond: row(1) },
    },
    {
      numSteps: options.numSteps,
      skip: options.skip,
      ranges: options.ranges,
      adainRange: options.adainRange,
      swapGuidanceScale: options.swapGuidanceScale,
      contrastStrength: options.contrastStrength,
      swapSites: swapSitesOf(unet),
      masks:
        options.masks !== undefined
          ? { kind: 'given', masks: options.masks }
          : seg !== undefined
            ? segmentationSource(latent, { prompt: options.prompt, objectNoun: seg.objectNoun })
            : { kind: 'none' },
      alwaysNoSwapPass: true,
    },
  );
  return {
    latents,
    timesteps: trace.timesteps,
    modelSteps: trace.modelSteps,
    swapStrengths: trace.swapStrengths,
    guidanceApplied: trace.guidanceApplied,
    noisePredSwap: trace.noisePredSwap,
    noisePredNoSwap: trace.noisePredNoSwap,
    noisePred: trace.noisePred,
    iterationLatents: trace.latents,
    latent0BeforeAdain: trace.latent0BeforeAdain,
    masks: trace.masks,
  };
}

/**
 * One call of the stock FreeU UNet with the self-segmentation's map recording (methods/shared/self-segmentation):
 * the head-averaged maps [rows, queries, keys] of the four modules it records, for the batch rows `rows`.
 */
export async function unetSegmentationMaps(
  engine: GoldenEngine,
  call: { sample: Tensor<'float32'>; timestep: number; encoderHiddenStates: Tensor<'float32'>; rows: readonly number[] },
): Promise<Record<SegmentationMapName, Tensor<'float32'>>> {
  const model = impl(engine);
  const unet = await model.unet({
    freeu: true,
    processors: { name: 'segmentation', key: { segmentation: true }, plan: withSegmentationMaps(undefined, model.unetConfig) },
  });
  const result = await unet.call({
    sample: call.sample,
    timestep: call.timestep,
    encoderHiddenStates: call.encoderHiddenStates,
    feeds: segmentationFeeds(call.rows),
  });
  const out = {} as Record<SegmentationMapName, Tensor<'float32'>>;
  for (const name of SEGMENTATION_MAP_NAMES) out[name] = result.outputs[segmentationOutput(name)] as Tensor<'float32'>;
  return out;
}

export type {
  AttentionMap,
  ImageSegmentationMaps,
  SegmentationFit,
  SegmentationFitName,
  SegmentationMapName,
  SelfSegmentationOptions,
} from '../methods/shared/self-segmentation/index.js';

/** The self-segmentation's four fits, in the reference's order (and RandomState use). */
export const SEGMENTATION_FIT_ORDER = SEGMENTATION_FITS;

/** The self-segmentation (k-means of both images' maps, cluster-to-noun scoring, masks) from recorded maps. */
export function selfSegmentation(maps: { style: ImageSegmentationMaps; struct: ImageSegmentationMaps }, options: SelfSegmentationOptions): SelfSegmentation {
  return selfSegment(maps, options);
}
