/**
 * An SD-2-shaped tiny UNet config (linear projections, heads per block, 2 transformer layers in one block) and the
 * diffusers parameter names and shapes it implies, written out independently of the builder, following diffusers'
 * module tree; with seeded random weights of those shapes. Used by sd2-tiny.test.ts and the CUDA kernel check.
 */
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { randomFloats, seededUniform } from './tiny-unet.js';

export const SD2_TINY = {
  _class_name: 'UNet2DConditionModel',
  in_channels: 4,
  out_channels: 3,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  block_out_channels: [8, 16, 24],
  layers_per_block: 1,
  attention_head_dim: [2, 4, 6], // diffusers 0.19.3: the number of heads per block (head size 4 everywhere, like SD-2's 64)
  cross_attention_dim: 12,
  norm_num_groups: 4,
  use_linear_projection: true,
  upcast_attention: true,
  transformer_layers_per_block: [1, 2, 1],
  flip_sin_to_cos: true,
  freq_shift: 1,
};

export type Shapes = Map<string, number[]>;

/** diffusers' parameter names and shapes of a UNet2DConditionModel with the fields used in SD2_TINY. */
export function unetWeightShapes(cfg: typeof SD2_TINY): Shapes {
  const shapes: Shapes = new Map();
  const put = (name: string, dims: number[]): void => void shapes.set(name, dims);
  const c0 = cfg.block_out_channels[0]!;
  const temb = 4 * c0;
  const linear = (p: string, out: number, inp: number, bias = true): void => {
    put(`${p}.weight`, [out, inp]);
    if (bias) put(`${p}.bias`, [out]);
  };
  const conv = (p: string, out: number, inp: number, k: number): void => {
    put(`${p}.weight`, [out, inp, k, k]);
    put(`${p}.bias`, [out]);
  };
  const norm = (p: string, c: number): void => {
    put(`${p}.weight`, [c]);
    put(`${p}.bias`, [c]);
  };
  const resnet = (p: string, inp: number, out: number): void => {
    norm(`${p}.norm1`, inp);
    conv(`${p}.conv1`, out, inp, 3);
    linear(`${p}.time_emb_proj`, out, temb);
    norm(`${p}.norm2`, out);
    conv(`${p}.conv2`, out, out, 3);
    if (inp !== out) conv(`${p}.conv_shortcut`, out, inp, 1);
  };
  const transformer = (p: string, c: number, layers: number): void => {
    norm(`${p}.norm`, c);
    for (const proj of ['proj_in', 'proj_out']) linear(`${p}.${proj}`, c, c);
    for (let k = 0; k < layers; k++) {
      const b = `${p}.transformer_blocks.${k}`;
      for (const n of ['norm1', 'norm2', 'norm3']) norm(`${b}.${n}`, c);
      for (const [attn, ctx] of [
        ['attn1', c],
        ['attn2', cfg.cross_attention_dim],
      ] as const) {
        linear(`${b}.${attn}.to_q`, c, c, false);
        linear(`${b}.${attn}.to_k`, c, ctx, false);
        linear(`${b}.${attn}.to_v`, c, ctx, false);
        linear(`${b}.${attn}.to_out.0`, c, c);
      }
      linear(`${b}.ff.net.0.proj`, 8 * c, c);
      linear(`${b}.ff.net.2`, c, 4 * c);
    }
  };
  conv('conv_in', c0, cfg.in_channels, 3);
  linear('time_embedding.linear_1', temb, c0);
  linear('time_embedding.linear_2', temb, temb);
  const ch = cfg.block_out_channels;
  const n = ch.length;
  cfg.down_block_types.forEach((type, i) => {
    for (let j = 0; j < cfg.layers_per_block; j++) {
      resnet(`down_blocks.${i}.resnets.${j}`, j === 0 ? ch[Math.max(i - 1, 0)]! : ch[i]!, ch[i]!);
      if (type === 'CrossAttnDownBlock2D') transformer(`down_blocks.${i}.attentions.${j}`, ch[i]!, cfg.transformer_layers_per_block[i]!);
    }
    if (i < n - 1) conv(`down_blocks.${i}.downsamplers.0.conv`, ch[i]!, ch[i]!, 3);
  });
  resnet('mid_block.resnets.0', ch[n - 1]!, ch[n - 1]!);
  transformer('mid_block.attentions.0', ch[n - 1]!, cfg.transformer_layers_per_block[n - 1]!);
  resnet('mid_block.resnets.1', ch[n - 1]!, ch[n - 1]!);
  const rev = [...ch].reverse();
  cfg.up_block_types.forEach((type, i) => {
    const layers = cfg.layers_per_block + 1;
    for (let j = 0; j < layers; j++) {
      const skip = j === layers - 1 ? rev[Math.min(i + 1, n - 1)]! : rev[i]!;
      const backbone = j === 0 ? rev[Math.max(i - 1, 0)]! : rev[i]!;
      resnet(`up_blocks.${i}.resnets.${j}`, backbone + skip, rev[i]!);
      if (type === 'CrossAttnUpBlock2D') transformer(`up_blocks.${i}.attentions.${j}`, rev[i]!, cfg.transformer_layers_per_block[n - 1 - i]!);
    }
    if (i < n - 1) conv(`up_blocks.${i}.upsamplers.0.conv`, rev[i]!, rev[i]!, 3);
  });
  norm('conv_norm_out', c0);
  conv('conv_out', cfg.out_channels, c0, 3);
  return shapes;
}

/** Seeded weights: norm scales near 1, other tensors uniform with a 1/sqrt(fan_in) scale. */
export function randomWeights(shapes: Shapes, seed: number): Record<string, Tensor> {
  const next = seededUniform(seed);
  const tensors: Record<string, Tensor> = {};
  for (const [name, dims] of shapes) {
    const size = dims.reduce((a, b) => a * b, 1);
    const isNormScale = dims.length === 1 && /norm[^.]*\.weight$/.test(name);
    const fanIn = dims.length === 1 ? 16 : size / dims[0]!;
    const values = randomFloats(next, size, isNormScale ? 0.25 : 1 / Math.sqrt(fanIn));
    tensors[name] = float32(dims, isNormScale ? values.map((v) => 1 + v) : values);
  }
  return tensors;
}
