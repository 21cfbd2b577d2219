/**
 * CrossAttnUpBlock2D: per layer, concatenate the newest skip state, resnet, Transformer2DModel; then Upsample2D.
 * Mirrors diffusers v0.19.3 `CrossAttnUpBlock2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py
 */
import { concat } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildResnetBlock2D } from '../nn/resnet-block-2d.js';
import { buildUpsample2D } from './resampling.js';
import { buildTransformer2D, transformer2DConfig, type CrossAttnBlockInputs } from './transformer-2d.js';
import { skipFor, upResnetConfig, type UpBlock2DConfig } from './up-block-2d.js';

export interface CrossAttnUpBlock2DConfig extends UpBlock2DConfig {
  readonly heads: number;
  readonly transformerLayers: number;
  readonly crossAttentionDim: number;
  readonly useLinearProjection: boolean;
}

/**
 *   x ─ cat(skip[-1]) ─ resnets.0 ─ attentions.0 ─ cat(skip[-2]) ─ resnets.1 ─ attentions.1 ─ ... ─ upsamplers.0
 */
export function buildCrossAttnUpBlock2D(
  scope: WeightScope,
  config: CrossAttnUpBlock2DConfig,
  x: Value,
  inputs: CrossAttnBlockInputs & { resSamples: readonly Value[]; upsampleTo?: Value | undefined },
): Value {
  const transformer = transformer2DConfig(config.outChannels, config);
  let h = x;
  for (let j = 0; j < config.layers; j++) {
    h = concat(scope.child('resnets', j), [h, skipFor(scope, inputs.resSamples, j)], 1, { name: 'Concat_skip' }); // [B, in, H, W]
    h = buildResnetBlock2D(scope.child('resnets', j), upResnetConfig(config, j), h, inputs.temb); // [B, out, H, W]
    h = buildTransformer2D(scope.child('attentions', j), transformer, h, inputs); // [B, out, H, W]
  }
  if (config.addUpsample) h = buildUpsample2D(scope.child('upsamplers', 0), { channels: config.outChannels }, h, inputs.upsampleTo); // [B, out, H', W']
  return h;
}
