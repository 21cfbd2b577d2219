/**
 * CrossAttnDownBlock2D: (resnet -> Transformer2DModel) per layer, then an optional Downsample2D.
 * Mirrors diffusers v0.19.3 `CrossAttnDownBlock2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/unet_2d_blocks.py
 */
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { downResnetConfig, type DownBlock2DConfig, type DownBlockOutput } from './down-block-2d.js';
import { buildResnetBlock2D } from '../nn/resnet-block-2d.js';
import { buildDownsample2D } from './resampling.js';
import { buildTransformer2D, transformer2DConfig, type CrossAttnBlockInputs } from './transformer-2d.js';

export interface CrossAttnDownBlock2DConfig extends DownBlock2DConfig {
  readonly heads: number;
  /** transformer_blocks per Transformer2DModel. */
  readonly transformerLayers: number;
  readonly crossAttentionDim: number;
  readonly useLinearProjection: boolean;
}

/**
 *   x ─ resnets.0 ─ attentions.0 ─ ... ─ resnets.{L-1} ─ attentions.{L-1} ─ downsamplers.0
 *                        ▼                                      ▼                  ▼    (res samples)
 */
export function buildCrossAttnDownBlock2D(scope: WeightScope, config: CrossAttnDownBlock2DConfig, x: Value, inputs: CrossAttnBlockInputs): DownBlockOutput {
  const resSamples: Value[] = [];
  const transformer = transformer2DConfig(config.outChannels, config);
  let h = x;
  for (let j = 0; j < config.layers; j++) {
    h = buildResnetBlock2D(scope.child('resnets', j), downResnetConfig(config, j), h, inputs.temb); // [B, out, H, W]
    h = buildTransformer2D(scope.child('attentions', j), transformer, h, inputs); // [B, out, H, W]
    resSamples.push(h);
  }
  if (config.addDownsample) {
    h = buildDownsample2D(scope.child('downsamplers', 0), { channels: config.outChannels, padding: config.downsamplePadding }, h); // [B, out, H/2, W/2]
    resSamples.push(h);
  }
  return { hidden: h, resSamples };
}
