/**
 * UNet2DConditionModel (SD-1.x / SD-2.x) as one ONNX graph, with the reference's FreeU variant and attention
 * processors chosen per Attention module (attention-processor.ts).
 * Mirrors diffusers v0.19.3 `UNet2DConditionModel` (phases of its forward: time, pre-process, down, mid, up,
 * post-process):
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_condition.py
 *
 * Graph inputs: `sample` float32 [B, in_channels, h, w] (any h, w: odd maps are upsampled back to their skip sizes), `timestep` int64 [1]
 * (one timestep for the whole batch), `encoder_hidden_states` float32 [B, T, cross_attention_dim].
 * Output: `out_sample` float32 [B, out_channels, h, w]. Processors add the graph inputs and outputs they declare.
 *
 *   timestep ─ time_proj ─ time_embedding ─────────────── temb (every resnet) ──────────────────────┐
 *   sample ─ conv_in ─ down_blocks.0..n-1 ─ mid_block ─ [FreeU] up_blocks.0 ... [FreeU] up_blocks.n-1 ─ conv_norm_out ─ SiLU ─ conv_out
 *                 └──── skip states (conv_in + every down resnet/attention/downsampler) ────┘ (newest first)
 */
import { ModelBuildError } from '../../errors.js';
import { GraphBuilder, type Value } from '../../onnx/graph-builder.js';
import { DEFAULT_TARGET, type BuildTarget } from '../../onnx/target.js';
import { actConst, cast, mul, silu, sub } from '../../onnx/ops.js';
import { WeightScope, type IgnoredWeight, type WeightSet } from '../../onnx/weight-scope.js';
import type { UNetConfig } from '../../config/unet-config.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildGroupNorm, float32Island } from '../nn/norm.js';
import { buildCrossAttnDownBlock2D } from './cross-attn-down-block-2d.js';
import { buildCrossAttnUpBlock2D } from './cross-attn-up-block-2d.js';
import { buildDownBlock2D, type DownBlock2DConfig } from './down-block-2d.js';
import { buildFreeU, validateFreeU, type FreeUOptions } from './freeu.js';
import { ProcessorHost, type AttentionSite, type ProcessorInput, type ProcessorPlan, type SiteLocation } from './attention-processor.js';
import { buildTimestepEmbedding, buildTimesteps } from './timestep-embedding.js';
import { buildUNetMidBlock2DCrossAttn } from './unet-mid-block-2d-cross-attn.js';
import type { CrossAttnBlockInputs } from './transformer-2d.js';
import { buildUpBlock2D, type UpBlock2DConfig } from './up-block-2d.js';

export interface UNetBuildOptions {
  /** The reference's FreeU variant (officialFreeU(config) gives its values), or null for the stock UNet. */
  freeu: FreeUOptions | null;
  /** Attention processors by module path; absent = stock diffusers attention everywhere. */
  processors?: ProcessorPlan | undefined;
  /** Execution provider and precision the graph is built for (default: CPU, float32). */
  target?: BuildTarget | undefined;
}

/** The built graph and what it holds. */
export interface BuiltUNet {
  readonly graph: GraphBuilder;
  /** Every Attention module, in execution order (down, mid, up; attn1 before attn2). */
  readonly sites: readonly AttentionSite[];
  /** Module paths that got a processor. */
  readonly processed: readonly string[];
  /** The graph inputs the processors declared, with their neutral values. */
  readonly processorInputs: readonly ProcessorInput[];
}

/** Every tensor of a diffusers UNet2DConditionModel checkpoint is used by the graph. */
export const UNET_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [];

interface UNetContext {
  readonly config: UNetConfig;
  readonly options: UNetBuildOptions;
  readonly host: ProcessorHost;
  readonly temb: Value;
  readonly encoderHiddenStates: Value;
  readonly crossAttentionDim: number;
}

/** Build the UNet graph; weights are checked in both directions (every file tensor must be used). */
export function buildUNet(weights: WeightSet, config: UNetConfig, options: UNetBuildOptions): BuiltUNet {
  const crossAttentionDim = checkSupported(config);
  if (options.freeu !== null) validateFreeU(options.freeu);
  const g = new GraphBuilder('unet', undefined, options.target ?? DEFAULT_TARGET);
  const root = new WeightScope(g, '/unet', weights, '');
  const sample = g.input('sample', 'float32', ['batch', config.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', 'int64', [1]);
  const encoderHiddenStates = g.input('encoder_hidden_states', 'float32', ['batch', 'sequence', crossAttentionDim]);

  // 1. time
  const c0 = config.blockOutChannels[0]!;
  const tProj = buildTimesteps(root.child('time_proj'), { numChannels: c0, flipSinToCos: config.flipSinToCos, downscaleFreqShift: config.freqShift }, timestep); // [1, C0]
  const temb = buildTimestepEmbedding(root.child('time_embedding'), { inChannels: c0, timeEmbedDim: config.timeEmbeddingDim }, tProj); // [1, temb]
  const host = new ProcessorHost(g, options.processors);
  const context: UNetContext = {
    config,
    options,
    host,
    temb,
    crossAttentionDim,
    encoderHiddenStates: g.target.precision === 'fp16' ? cast(root, encoderHiddenStates, 'float16', { name: 'Cast_context_fp16' }) : encoderHiddenStates,
  };

  // 2. pre-process (fp16: the float32 inputs are cast once, here, and the output back at the end)
  const fp16 = g.target.precision === 'fp16';
  let h = fp16 ? cast(root, sample, 'float16', { name: 'Cast_sample_fp16' }) : sample;
  if (config.centerInputSample) h = sub(root, mul(root, h, actConst(root, 2), { name: 'Mul_center' }), actConst(root, 1), { name: 'Sub_center' });
  const kIn = config.convInKernel;
  h = buildConv2d(root.child('conv_in'), h, { inChannels: config.inChannels, outChannels: c0, kernel: kIn, padding: (kIn - 1) / 2 }); // [B, C0, h, w]

  // 3.-5. down, mid, up
  const down = buildDownPath(root, context, h);
  h = buildMid(root, context, down.hidden);
  h = buildUpPath(root, context, h, down.resSamples); // [B, C0, h, w]

  // 6. post-process
  h = buildGroupNorm(root.child('conv_norm_out'), h, { channels: c0, groups: config.normNumGroups, eps: config.normEps }); // [B, C0, h, w]
  h = silu(root.sub('conv_act'), h);
  const kOut = config.convOutKernel;
  h = buildConv2d(root.child('conv_out'), h, { inChannels: c0, outChannels: config.outChannels, kernel: kOut, padding: (kOut - 1) / 2 }); // [B, out, h, w]
  g.output(fp16 ? cast(root, h, 'float32', { name: 'Cast_out_fp32' }) : h, 'out_sample', 'float32', ['batch', config.outChannels, 'height', 'width']);
  weights.assertAllUsed(UNET_IGNORED_WEIGHTS);
  host.finish();
  return { graph: g, sites: host.sites, processed: host.processed, processorInputs: host.inputs };
}

/** Features parseUNetConfig accepts but this builder does not; returns the single cross-attention width. */
function checkSupported(config: UNetConfig): number {
  const onlyCross = config.onlyCrossAttention.findIndex((v) => v);
  if (onlyCross >= 0) {
    throw new ModelBuildError(
      `UNet config field 'only_cross_attention' = true (block ${onlyCross}) is not supported: only the SD-1.x/2.x layout (false) is built`,
    );
  }
  const dims = typeof config.crossAttentionDim === 'number' ? [config.crossAttentionDim] : config.crossAttentionDim;
  if (dims.some((d) => d !== dims[0])) {
    throw new ModelBuildError(
      `UNet config field 'cross_attention_dim' = [${dims.join(', ')}] is not supported: one encoder_hidden_states width serves every block`,
    );
  }
  return dims[0]!;
}

function buildDownPath(root: WeightScope, context: UNetContext, x: Value): { hidden: Value; resSamples: Value[] } {
  const { config, temb } = context;
  const n = config.blockOutChannels.length;
  const resSamples: Value[] = [x];
  let h = x;
  config.downBlockTypes.forEach((type, i) => {
    const block: DownBlock2DConfig = {
      inChannels: config.blockOutChannels[Math.max(i - 1, 0)]!,
      outChannels: config.blockOutChannels[i]!,
      tembChannels: config.timeEmbeddingDim,
      layers: config.layersPerBlock,
      groups: config.normNumGroups,
      eps: config.normEps,
      addDownsample: i < n - 1,
      downsamplePadding: config.downsamplePadding,
    };
    const scope = root.child('down_blocks', i);
    const out =
      type === 'DownBlock2D'
        ? buildDownBlock2D(scope, block, h, temb)
        : buildCrossAttnDownBlock2D(scope, { ...block, ...attentionOf(context, i) }, h, blockInputs(context, { block: 'down', blockIndex: i, level: i }));
    h = out.hidden;
    resSamples.push(...out.resSamples);
  });
  return { hidden: h, resSamples };
}

function buildMid(root: WeightScope, context: UNetContext, x: Value): Value {
  const { config } = context;
  const n = config.blockOutChannels.length;
  return buildUNetMidBlock2DCrossAttn(
    root.child('mid_block'),
    {
      channels: config.blockOutChannels[n - 1]!,
      tembChannels: config.timeEmbeddingDim,
      groups: config.normNumGroups,
      eps: config.normEps,
      outputScaleFactor: config.midBlockScaleFactor,
      ...attentionOf(context, n - 1),
    },
    x,
    blockInputs(context, { block: 'mid', blockIndex: 0, level: n - 1 }),
  ); // [B, C_last, h/2^(n-1), w/2^(n-1)]
}

/** Up block i consumes the newest layers+1 skip states; FreeU acts on its backbone input first. */
function buildUpPath(root: WeightScope, context: UNetContext, x: Value, resSamples: Value[]): Value {
  const { config, options } = context;
  const n = config.blockOutChannels.length;
  const reversed = [...config.blockOutChannels].reverse();
  let h = x;
  config.upBlockTypes.forEach((type, i) => {
    const block: UpBlock2DConfig = {
      inChannels: reversed[Math.min(i + 1, n - 1)]!,
      prevOutputChannels: reversed[Math.max(i - 1, 0)]!,
      outChannels: reversed[i]!,
      tembChannels: config.timeEmbeddingDim,
      layers: config.layersPerBlock + 1,
      groups: config.normNumGroups,
      eps: config.normEps,
      addUpsample: i < n - 1,
    };
    const scope = root.child('up_blocks', i);
    const freeu = options.freeu;
    if (freeu !== null) h = float32Island(scope.sub('freeu'), h, (x32) => buildFreeU(scope.sub('freeu'), freeu, x32, block.prevOutputChannels)); // [B, C, H, W]
    const skips = resSamples.splice(resSamples.length - block.layers, block.layers);
    // Upsample to the size of the next block's first skip state (exact for odd maps, like diffusers' upsample_size).
    const upsampleTo = block.addUpsample ? resSamples[resSamples.length - 1] : undefined;
    h =
      type === 'UpBlock2D'
        ? buildUpBlock2D(scope, block, h, { resSamples: skips, temb: context.temb, upsampleTo })
        : buildCrossAttnUpBlock2D(scope, { ...block, ...attentionOf(context, n - 1 - i) }, h, {
            ...blockInputs(context, { block: 'up', blockIndex: i, level: n - 1 - i }),
            resSamples: skips,
            upsampleTo,
          });
  });
  if (resSamples.length !== 0) throw new ModelBuildError(`UNet: ${resSamples.length} skip connection(s) left unused`);
  return h;
}

/** Attention settings of down block `i` (up block n-1-i shares them; the mid block uses the last). */
function attentionOf(context: UNetContext, i: number): { heads: number; transformerLayers: number; crossAttentionDim: number; useLinearProjection: boolean } {
  const { config } = context;
  return {
    heads: config.numAttentionHeads[i]!,
    transformerLayers: config.transformerLayersPerBlock[i]!,
    crossAttentionDim: context.crossAttentionDim,
    useLinearProjection: config.useLinearProjection,
  };
}

/** SD-1's latent size, for configs without sample_size. */
const DEFAULT_SAMPLE_SIZE = 64;

function blockInputs(context: UNetContext, location: SiteLocation): CrossAttnBlockInputs {
  const side = Math.ceil((context.config.sampleSize ?? DEFAULT_SAMPLE_SIZE) / 2 ** location.level);
  return { temb: context.temb, encoderHiddenStates: context.encoderHiddenStates, attention: { host: context.host, location, expectedTokens: side * side } };
}
