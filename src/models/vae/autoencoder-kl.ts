/**
 * diffusers' AutoencoderKL as two ONNX graphs: `encode` (latent_dist.mode() * scaling_factor) and `decode`.
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/autoencoder_kl.py (class AutoencoderKL)
 * https://github.com/huggingface/diffusers/blob/v0.19.3/src/diffusers/models/vae.py (class DiagonalGaussianDistribution)
 *
 * The encoder graph keeps only the mean half of the moments (the mode of the diagonal Gaussian): the reference
 * inversion encodes with `.mode()`, so no sampling noise enters. H and W are dynamic; SD's VAE needs multiples of
 * 2^(len(block_out_channels) - 1) (8) for decode(encode(x)) to keep the size: callers check that, not the graph.
 */
import type { VaeConfig } from '../../config/vae-config.js';
import { GraphBuilder } from '../../onnx/graph-builder.js';
import { DEFAULT_TARGET, type BuildTarget } from '../../onnx/target.js';
import { constFloat, div, mul, slice } from '../../onnx/ops.js';
import { WeightScope, type IgnoredWeight, type WeightSet } from '../../onnx/weight-scope.js';
import { buildConv2d } from '../nn/conv2d.js';
import { buildDecoder } from './decoder.js';
import { buildEncoder } from './encoder.js';

/** Tensors of vae/diffusion_pytorch_model.safetensors the encoder graph does not use. */
export const VAE_ENCODER_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [
  { pattern: /^decoder\./, reason: 'decoder weights: used by the decoder graph (buildVaeDecoder)' },
  { pattern: /^post_quant_conv\./, reason: 'applied before the decoder: used by the decoder graph (buildVaeDecoder)' },
];

/** Tensors of vae/diffusion_pytorch_model.safetensors the decoder graph does not use. */
export const VAE_DECODER_IGNORED_WEIGHTS: readonly IgnoredWeight[] = [
  { pattern: /^encoder\./, reason: 'encoder weights: used by the encoder graph (buildVaeEncoder)' },
  { pattern: /^quant_conv\./, reason: 'applied after the encoder: used by the encoder graph (buildVaeEncoder)' },
];

/** How many times the encoder halves H and W: one Downsample2D per down block but the last. */
export function vaeDownscaleFactor(config: VaeConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

/** Tokens of the latent map at the config's sample_size. */
function latentTokens(config: VaeConfig): number {
  const side = Math.ceil(config.sampleSize / vaeDownscaleFactor(config));
  return side * side;
}

function rootScope(g: GraphBuilder, weights: WeightSet): WeightScope {
  return new WeightScope(g, '', weights, '');
}

/**
 *   sample [B,3,H,W] ─► encoder ─► quant_conv (1x1) ─► moments [B,2L,h,w] ─► Slice mean [B,L,h,w]
 *                    ─► * scaling_factor ─► latent
 */
export function buildVaeEncoder(weights: WeightSet, config: VaeConfig, target: BuildTarget = DEFAULT_TARGET): GraphBuilder {
  const g = new GraphBuilder('vae_encoder', undefined, target);
  g.setMetadata('model_type', 'vae_encoder');
  g.setMetadata('scaling_factor', String(config.scalingFactor));
  const scope = rootScope(g, weights);
  const latentChannels = config.latentChannels;
  const sample = g.input('sample', 'float32', ['batch', config.inChannels, 'height', 'width']); // [B, 3, H, W]
  const encoderConfig = {
    inChannels: config.inChannels,
    outChannels: latentChannels,
    blockOutChannels: config.blockOutChannels,
    layersPerBlock: config.layersPerBlock,
    normNumGroups: config.normNumGroups,
    doubleZ: true,
    expectedTokens: latentTokens(config),
  };
  const h = buildEncoder(scope.child('encoder'), encoderConfig, sample); // [B, 2L, h, w]
  const moments = buildConv2d(scope.child('quant_conv'), h, { inChannels: 2 * latentChannels, outChannels: 2 * latentChannels, kernel: 1 }); // [B, 2L, h, w]
  const dist = scope.sub('latent_dist');
  const mean = slice(dist, moments, { starts: [0], ends: [latentChannels], axes: [1] }, { name: 'Slice_mean' }); // [B, L, h, w]
  const latent = mul(dist, mean, constFloat(g, config.scalingFactor), { name: 'Mul_scaling_factor' }); // [B, L, h, w]
  g.output(latent, 'latent', 'float32', ['batch', latentChannels, 'latent_height', 'latent_width']);
  weights.assertAllUsed(VAE_ENCODER_IGNORED_WEIGHTS);
  return g;
}

/**
 *   latent [B,L,h,w] ─► / scaling_factor ─► post_quant_conv (1x1) ─► decoder ─► image [B,3,8h,8w] (not clamped)
 */
export function buildVaeDecoder(weights: WeightSet, config: VaeConfig, target: BuildTarget = DEFAULT_TARGET): GraphBuilder {
  const g = new GraphBuilder('vae_decoder', undefined, target);
  g.setMetadata('model_type', 'vae_decoder');
  g.setMetadata('scaling_factor', String(config.scalingFactor));
  const scope = rootScope(g, weights);
  const latentChannels = config.latentChannels;
  const latent = g.input('latent', 'float32', ['batch', latentChannels, 'latent_height', 'latent_width']); // [B, L, h, w]
  // A division, not a multiplication by 1/scaling_factor, so the rounding matches the pipeline's `latents / sf`.
  const z = div(scope.sub('unscale'), latent, constFloat(g, config.scalingFactor), { name: 'Div_scaling_factor' }); // [B, L, h, w]
  const unquantized = buildConv2d(scope.child('post_quant_conv'), z, { inChannels: latentChannels, outChannels: latentChannels, kernel: 1 }); // [B, L, h, w]
  const decoderConfig = {
    inChannels: latentChannels,
    outChannels: config.outChannels,
    blockOutChannels: config.blockOutChannels,
    layersPerBlock: config.layersPerBlock,
    normNumGroups: config.normNumGroups,
    expectedTokens: latentTokens(config),
  };
  const image = buildDecoder(scope.child('decoder'), decoderConfig, unquantized); // [B, 3, H, W]
  g.output(image, 'image', 'float32', ['batch', config.outChannels, 'height', 'width']);
  weights.assertAllUsed(VAE_DECODER_IGNORED_WEIGHTS);
  return g;
}
