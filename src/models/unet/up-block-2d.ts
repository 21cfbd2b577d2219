/**
 * UpBlock2D: per layer, concatenate the newest skip state on channels, then a resnet; then an optional Upsample2D.
 * Mirrors diffusers v0.19.3 `UpBlock2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py
 */
import { concat } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { ModelBuildError } from '../../errors.js';
import { buildResnetBlock2D, type ResnetBlock2DConfig } from '../nn/resnet-block-2d.js';
import { buildUpsample2D } from './resampling.js';

export interface UpBlock2DConfig {
  /** Channels of the deepest skip state this block consumes (the last layer's skip). */
  readonly inChannels: number;
  /** Channels of the backbone input (the previous up block's output). */
  readonly prevOutputChannels: number;
  readonly outChannels: number;
  readonly tembChannels: number;
  /** Number of resnets (layers_per_block + 1). */
  readonly layers: number;
  readonly groups: number;
  readonly eps: number;
  readonly addUpsample: boolean;
}

/** Config of resnet `j` of an up block: its input is [backbone or previous resnet, skip] on channels. */
export function upResnetConfig(config: UpBlock2DConfig, j: number): ResnetBlock2DConfig {
  const skip = j === config.layers - 1 ? config.inChannels : config.outChannels;
  const backbone = j === 0 ? config.prevOutputChannels : config.outChannels;
  return {
    inChannels: backbone + skip,
    outChannels: config.outChannels,
    tembChannels: config.tembChannels,
    groups: config.groups,
    eps: config.eps,
    outputScaleFactor: 1,
  };
}

/** The skip state of layer `j`: res_hidden_states_tuple is popped from the end. */
export function skipFor(scope: WeightScope, resSamples: readonly Value[], j: number): Value {
  const skip = resSamples[resSamples.length - 1 - j];
  if (skip === undefined) throw new ModelBuildError(`${scope.path}: layer ${j} has no skip connection left (${resSamples.length} given)`);
  return skip;
}

/**
 *   x ─ cat(skip[-1]) ─ resnets.0 ─ cat(skip[-2]) ─ resnets.1 ─ ... ─ upsamplers.0
 */
export function buildUpBlock2D(
  scope: WeightScope,
  config: UpBlock2DConfig,
  x: Value,
  inputs: { resSamples: readonly Value[]; temb: Value; upsampleTo?: Value | undefined },
): Value {
  let h = x;
  for (let j = 0; j < config.layers; j++) {
    h = concat(scope.child('resnets', j), [h, skipFor(scope, inputs.resSamples, j)], 1, { name: 'Concat_skip' }); // [B, in, H, W]
    h = buildResnetBlock2D(scope.child('resnets', j), upResnetConfig(config, j), h, inputs.temb); // [B, out, H, W]
  }
  if (config.addUpsample) h = buildUpsample2D(scope.child('upsamplers', 0), { channels: config.outChannels }, h, inputs.upsampleTo); // [B, out, H', W']
  return h;
}
