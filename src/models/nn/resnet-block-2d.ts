/**
 * ResnetBlock2D (time_embedding_norm "default", no up/down sampling): with a time embedding in the UNet, without
 * one (temb_channels None) in the VAE. Mirrors diffusers v0.19.3 `ResnetBlock2D`:
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/resnet.py
 */
import { ModelBuildError } from '../../errors.js';
import { actConst, add, div, silu, unsqueeze } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { buildConv2d } from './conv2d.js';
import { buildLinear } from './linear.js';
import { buildGroupNorm } from './norm.js';

export interface ResnetBlock2DConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  /** Width of the time embedding; null for the VAE's blocks (no time_emb_proj). */
  readonly tembChannels: number | null;
  readonly groups: number;
  readonly eps: number;
  /** (shortcut + h) / outputScaleFactor; 1 except in a mid block with mid_block_scale_factor != 1. */
  readonly outputScaleFactor?: number;
}

/**
 *   x ─ norm1 ─ SiLU ─ conv1 ─(+ time_emb_proj(SiLU(temb))[:, :, None, None])─ norm2 ─ SiLU ─ conv2 ─┐
 *   └──────────────── conv_shortcut (1x1, only when in != out) ──────────────────────────────── + ─ / scale
 */
export function buildResnetBlock2D(scope: WeightScope, config: ResnetBlock2DConfig, x: Value, temb?: Value): Value {
  const { inChannels, outChannels, groups, eps } = config;
  let h = buildGroupNorm(scope.child('norm1'), x, { channels: inChannels, groups, eps }); // [B, in, H, W]
  h = silu(scope.sub('act1'), h);
  h = buildConv2d(scope.child('conv1'), h, { inChannels, outChannels, kernel: 3, padding: 1 }); // [B, out, H, W]
  if (config.tembChannels !== null) {
    if (temb === undefined) throw new ModelBuildError(`${scope.path}: a time embedding of ${config.tembChannels} channels is needed`);
    const t = buildLinear(scope.child('time_emb_proj'), silu(scope.sub('act_temb'), temb), config.tembChannels, outChannels); // [1, out]
    h = add(scope, h, unsqueeze(scope, t, [2, 3]), { name: 'Add_temb' }); // [B, out, H, W]
  }
  h = buildGroupNorm(scope.child('norm2'), h, { channels: outChannels, groups, eps }); // [B, out, H, W]
  h = silu(scope.sub('act2'), h);
  h = buildConv2d(scope.child('conv2'), h, { inChannels: outChannels, outChannels, kernel: 3, padding: 1 }); // [B, out, H, W]
  const shortcut = inChannels === outChannels ? x : buildConv2d(scope.child('conv_shortcut'), x, { inChannels, outChannels, kernel: 1 }); // [B, out, H, W]
  const out = add(scope, shortcut, h, { name: 'Add_residual' }); // [B, out, H, W]
  const scale = config.outputScaleFactor ?? 1;
  if (scale === 1) return out;
  return div(scope, out, actConst(scope, scale), { name: 'Div_output_scale' });
}
