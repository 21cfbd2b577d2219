/**
 * UNetMidBlock2DCrossAttn: resnets.0, then (Transformer2DModel -> resnet) per layer (one in SD).
 * Mirrors diffusers v0.19.3 `UNetMidBlock2DCrossAttn`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py
 */
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildResnetBlock2D, type ResnetBlock2DConfig } from '../nn/resnet-block-2d.js';
import { buildTransformer2D, transformer2DConfig, type CrossAttnBlockInputs } from './transformer-2d.js';

export interface UNetMidBlock2DCrossAttnConfig {
  readonly channels: number;
  readonly tembChannels: number;
  readonly groups: number;
  readonly eps: number;
  /** mid_block_scale_factor, the resnets' output_scale_factor. */
  readonly outputScaleFactor: number;
  readonly heads: number;
  readonly transformerLayers: number;
  readonly crossAttentionDim: number;
  readonly useLinearProjection: boolean;
}

/** diffusers' default num_layers of the mid block (the UNet does not override it). */
const MID_LAYERS = 1;

/**
 *   x ─ resnets.0 ─ attentions.0 ─ resnets.1
 */
export function buildUNetMidBlock2DCrossAttn(scope: WeightScope, config: UNetMidBlock2DCrossAttnConfig, x: Value, inputs: CrossAttnBlockInputs): Value {
  const { channels } = config;
  const resnet: ResnetBlock2DConfig = {
    inChannels: channels,
    outChannels: channels,
    tembChannels: config.tembChannels,
    groups: config.groups,
    eps: config.eps,
    outputScaleFactor: config.outputScaleFactor,
  };
  const transformer = transformer2DConfig(channels, config);
  let h = buildResnetBlock2D(scope.child('resnets', 0), resnet, x, inputs.temb); // [B, C, H, W]
  for (let j = 0; j < MID_LAYERS; j++) {
    h = buildTransformer2D(scope.child('attentions', j), transformer, h, inputs); // [B, C, H, W]
    h = buildResnetBlock2D(scope.child('resnets', j + 1), resnet, h, inputs.temb); // [B, C, H, W]
  }
  return h;
}
