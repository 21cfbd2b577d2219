/**
 * Every tensor name and shape of a diffusers checkpoint, derived from the configs alone (independently of the graph
 * builders in src/models): UNet2DConditionModel and AutoencoderKL as diffusers 0.19.3 lays them out, CLIPTextModel
 * as transformers does. Used to generate random-weight models of the real sizes (bench/random-model.ts); checked
 * against the tiny golden model's files by `bench --self-check`.
 */
import type { ClipTextConfig, UNetConfig, VaeConfig } from '../src/config/index.js';

export type WeightKind = 'weight' | 'bias' | 'norm-weight' | 'norm-bias' | 'position-ids';

export interface WeightSpec {
  name: string;
  dims: number[];
  dtype: 'float32' | 'int64';
  /** How random values are chosen (norm weights 1, biases 0, the rest small uniform values). */
  kind: WeightKind;
}

class Lister {
  readonly specs: WeightSpec[] = [];

  add(name: string, dims: number[], kind: WeightKind = 'weight', dtype: 'float32' | 'int64' = 'float32'): void {
    this.specs.push({ name, dims, dtype, kind });
  }

  norm(prefix: string, channels: number): void {
    this.add(`${prefix}.weight`, [channels], 'norm-weight');
    this.add(`${prefix}.bias`, [channels], 'norm-bias');
  }

  linear(prefix: string, inDim: number, outDim: number, bias = true): void {
    this.add(`${prefix}.weight`, [outDim, inDim]);
    if (bias) this.add(`${prefix}.bias`, [outDim], 'bias');
  }

  conv(prefix: string, inCh: number, outCh: number, kernel: number): void {
    this.add(`${prefix}.weight`, [outCh, inCh, kernel, kernel]);
    this.add(`${prefix}.bias`, [outCh], 'bias');
  }
}

// ---------------------------------------------------------------------------------------------------- UNet

function unetResnet(l: Lister, p: string, inCh: number, outCh: number, temb: number | null): void {
  l.norm(`${p}.norm1`, inCh);
  l.conv(`${p}.conv1`, inCh, outCh, 3);
  if (temb !== null) l.linear(`${p}.time_emb_proj`, temb, outCh);
  l.norm(`${p}.norm2`, outCh);
  l.conv(`${p}.conv2`, outCh, outCh, 3);
  if (inCh !== outCh) l.conv(`${p}.conv_shortcut`, inCh, outCh, 1);
}

function transformer2d(l: Lister, p: string, c: number, crossDim: number, layers: number, linearProjection: boolean, onlyCross: boolean): void {
  l.norm(`${p}.norm`, c);
  if (linearProjection) l.linear(`${p}.proj_in`, c, c);
  else l.conv(`${p}.proj_in`, c, c, 1);
  for (let k = 0; k < layers; k++) {
    const b = `${p}.transformer_blocks.${k}`;
    l.norm(`${b}.norm1`, c);
    const attn1Context = onlyCross ? crossDim : c;
    l.linear(`${b}.attn1.to_q`, c, c, false);
    l.linear(`${b}.attn1.to_k`, attn1Context, c, false);
    l.linear(`${b}.attn1.to_v`, attn1Context, c, false);
    l.linear(`${b}.attn1.to_out.0`, c, c);
    l.norm(`${b}.norm2`, c);
    l.linear(`${b}.attn2.to_q`, c, c, false);
    l.linear(`${b}.attn2.to_k`, crossDim, c, false);
    l.linear(`${b}.attn2.to_v`, crossDim, c, false);
    l.linear(`${b}.attn2.to_out.0`, c, c);
    l.norm(`${b}.norm3`, c);
    l.linear(`${b}.ff.net.0.proj`, c, c * 4 * 2); // GEGLU: hidden and gate
    l.linear(`${b}.ff.net.2`, c * 4, c);
  }
  if (linearProjection) l.linear(`${p}.proj_out`, c, c);
  else l.conv(`${p}.proj_out`, c, c, 1);
}

export function unetWeights(cfg: UNetConfig): WeightSpec[] {
  const l = new Lister();
  const boc = cfg.blockOutChannels;
  const n = boc.length;
  const c0 = boc[0]!;
  const temb = cfg.timeEmbeddingDim;
  const cross = (i: number): number => (typeof cfg.crossAttentionDim === 'number' ? cfg.crossAttentionDim : cfg.crossAttentionDim[i]!);
  const tl = cfg.transformerLayersPerBlock;
  const lin = cfg.useLinearProjection;

  l.conv('conv_in', cfg.inChannels, c0, cfg.convInKernel);
  l.linear('time_embedding.linear_1', c0, temb);
  l.linear('time_embedding.linear_2', temb, temb);

  let output = c0;
  cfg.downBlockTypes.forEach((type, i) => {
    const input = output;
    output = boc[i]!;
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      unetResnet(l, `down_blocks.${i}.resnets.${j}`, j === 0 ? input : output, output, temb);
      if (type === 'CrossAttnDownBlock2D') {
        transformer2d(l, `down_blocks.${i}.attentions.${j}`, output, cross(i), tl[i]!, lin, cfg.onlyCrossAttention[i]!);
      }
    }
    if (i < n - 1) l.conv(`down_blocks.${i}.downsamplers.0.conv`, output, output, 3);
  });

  const cm = boc[n - 1]!;
  unetResnet(l, 'mid_block.resnets.0', cm, cm, temb);
  transformer2d(l, 'mid_block.attentions.0', cm, cross(n - 1), tl[n - 1]!, lin, false);
  unetResnet(l, 'mid_block.resnets.1', cm, cm, temb);

  const rev = [...boc].reverse();
  const revCross = Array.from({ length: n }, (_, i) => cross(n - 1 - i));
  const revLayers = [...tl].reverse();
  const revOnlyCross = [...cfg.onlyCrossAttention].reverse();
  output = rev[0]!;
  cfg.upBlockTypes.forEach((type, i) => {
    const prev = output;
    output = rev[i]!;
    const input = rev[Math.min(i + 1, n - 1)]!;
    const layers = cfg.layersPerBlock + 1;
    for (let j = 0; j < layers; j++) {
      const skip = j === layers - 1 ? input : output;
      const resIn = j === 0 ? prev : output;
      unetResnet(l, `up_blocks.${i}.resnets.${j}`, resIn + skip, output, temb);
      if (type === 'CrossAttnUpBlock2D') {
        transformer2d(l, `up_blocks.${i}.attentions.${j}`, output, revCross[i]!, revLayers[i]!, lin, revOnlyCross[i]!);
      }
    }
    if (i < n - 1) l.conv(`up_blocks.${i}.upsamplers.0.conv`, output, output, 3);
  });

  l.norm('conv_norm_out', c0);
  l.conv('conv_out', c0, cfg.outChannels, cfg.convOutKernel);
  return l.specs;
}

// ---------------------------------------------------------------------------------------------------- VAE

function vaeAttention(l: Lister, p: string, c: number): void {
  l.norm(`${p}.group_norm`, c);
  l.linear(`${p}.to_q`, c, c);
  l.linear(`${p}.to_k`, c, c);
  l.linear(`${p}.to_v`, c, c);
  l.linear(`${p}.to_out.0`, c, c);
}

function vaeMid(l: Lister, p: string, c: number): void {
  unetResnet(l, `${p}.resnets.0`, c, c, null);
  vaeAttention(l, `${p}.attentions.0`, c);
  unetResnet(l, `${p}.resnets.1`, c, c, null);
}

export function vaeWeights(cfg: VaeConfig): WeightSpec[] {
  const l = new Lister();
  const boc = cfg.blockOutChannels;
  const n = boc.length;
  const lat = cfg.latentChannels;

  // encoder
  l.conv('encoder.conv_in', cfg.inChannels, boc[0]!, 3);
  let output = boc[0]!;
  for (let i = 0; i < n; i++) {
    const input = output;
    output = boc[i]!;
    for (let j = 0; j < cfg.layersPerBlock; j++) unetResnet(l, `encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? input : output, output, null);
    if (i < n - 1) l.conv(`encoder.down_blocks.${i}.downsamplers.0.conv`, output, output, 3);
  }
  vaeMid(l, 'encoder.mid_block', boc[n - 1]!);
  l.norm('encoder.conv_norm_out', boc[n - 1]!);
  l.conv('encoder.conv_out', boc[n - 1]!, 2 * lat, 3);
  l.conv('quant_conv', 2 * lat, 2 * lat, 1);

  // decoder
  l.conv('post_quant_conv', lat, lat, 1);
  const rev = [...boc].reverse();
  l.conv('decoder.conv_in', lat, rev[0]!, 3);
  vaeMid(l, 'decoder.mid_block', rev[0]!);
  output = rev[0]!;
  for (let i = 0; i < n; i++) {
    const prev = output;
    output = rev[i]!;
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) unetResnet(l, `decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? prev : output, output, null);
    if (i < n - 1) l.conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, output, output, 3);
  }
  l.norm('decoder.conv_norm_out', boc[0]!);
  l.conv('decoder.conv_out', boc[0]!, cfg.outChannels, 3);
  return l.specs;
}

// ---------------------------------------------------------------------------------------------------- CLIP text

export function clipTextWeights(cfg: ClipTextConfig): WeightSpec[] {
  const l = new Lister();
  const d = cfg.hiddenSize;
  l.add('text_model.embeddings.token_embedding.weight', [cfg.vocabSize, d]);
  l.add('text_model.embeddings.position_embedding.weight', [cfg.maxPositionEmbeddings, d]);
  // Older transformers checkpoints (SD-1.5's included) carry the position_ids buffer.
  l.add('text_model.embeddings.position_ids', [1, cfg.maxPositionEmbeddings], 'position-ids', 'int64');
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    l.norm(`${p}.layer_norm1`, d);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) l.linear(`${p}.self_attn.${proj}`, d, d);
    l.norm(`${p}.layer_norm2`, d);
    l.linear(`${p}.mlp.fc1`, d, cfg.intermediateSize);
    l.linear(`${p}.mlp.fc2`, cfg.intermediateSize, d);
  }
  l.norm('text_model.final_layer_norm', d);
  return l.specs;
}

export function countParameters(specs: readonly WeightSpec[]): number {
  return specs.filter((s) => s.dtype === 'float32').reduce((sum, s) => sum + s.dims.reduce((a, b) => a * b, 1), 0);
}
