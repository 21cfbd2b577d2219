/**
 * The `segment` phase of `npm run bench`: Cross-Image Attention's self-segmentation (4 KMeans fits of 10 inits in
 * scikit-learn's float32 arithmetic, cluster-to-noun scoring, masks) on attention-like maps of the SD-1.5 sizes at
 * 512x512 (self-attention 64x64 and 32x32 tokens, cross-attention 32x32 and 16x16 x 77 tokens).
 * The maps are synthetic (softmax rows of a smooth, region-structured affinity), so the figures time the clustering
 * itself, not the UNet call that records the maps (that call is part of the transfer's step).
 */
import { SEGMENTATION_FITS, selfSegment, type AttentionMap, type ImageSegmentationMaps } from '../src/methods/shared/self-segmentation/index.js';
import { log, round, type Figures } from './common.js';

/** Region of token p on a side x side map: an object box, else one of four background quadrants. */
function region(p: number, side: number, shift: number): number {
  const y = Math.floor(p / side) / side;
  const x = (p % side) / side;
  if (y > 0.3 && y < 0.7 && x > 0.2 + shift && x < 0.6 + shift) return 0;
  return 1 + (y < 0.5 ? 0 : 1) + (x < 0.5 ? 0 : 2);
}

function selfMap(side: number, shift: number): AttentionMap {
  const n = side * side;
  const data = new Float32Array(n * n);
  const sigma = (side / 6) ** 2;
  for (let p = 0; p < n; p++) {
    const py = Math.floor(p / side);
    const px = p % side;
    const rp = region(p, side, shift);
    let sum = 0;
    for (let q = 0; q < n; q++) {
      const dy = py - Math.floor(q / side);
      const dx = px - (q % side);
      const v = Math.exp(-(dy * dy + dx * dx) / sigma + (region(q, side, shift) === rp ? 2 : 0));
      data[p * n + q] = v;
      sum += v;
    }
    for (let q = 0; q < n; q++) data[p * n + q] = Math.fround(data[p * n + q]! / sum);
  }
  return { data, height: side, width: side, keys: n };
}

/** Cross-attention [side^2, 77]: the noun token (5) high on the object region. */
function crossMap(side: number, shift: number): AttentionMap {
  const n = side * side;
  const keys = 77;
  const data = new Float32Array(n * keys).fill(0.5 / keys);
  for (let p = 0; p < n; p++) data[p * keys + 5] = region(p, side, shift) === 0 ? 0.4 : 0.05;
  return { data, height: side, width: side, keys };
}

function maps(latent: number, shift: number): ImageSegmentationMaps {
  return {
    self_attention_64: selfMap(latent, shift),
    self_attention_32: selfMap(latent / 2, shift),
    cross_attention_64: crossMap(latent / 2, shift),
    cross_attention_32: crossMap(latent / 4, shift),
  };
}

/** SD-1.5's latent side at 512x512. */
const LATENT = 64;

export function phaseSegment(): Promise<Figures> {
  const latent = LATENT;
  const t0 = performance.now();
  const input = { style: maps(latent, 0), struct: maps(latent, 0.1) };
  const mapsS = (performance.now() - t0) / 1000;
  log(`segment: synthetic maps for a ${latent * 8}x${latent * 8} image in ${mapsS.toFixed(1)} s; clustering`);
  const t1 = performance.now();
  const result = selfSegment(input, { nouns: [{ index: 4, word: 'bird' }], objectNouns: ['bird'] });
  const seconds = (performance.now() - t1) / 1000;
  const fits: Record<string, unknown> = {};
  for (const fit of SEGMENTATION_FITS) {
    const f = result.fits[fit.name];
    fits[fit.name] = { samples: f.kmeans.labels.length, n_iter: f.kmeans.inits.map((i) => i.nIter), mask_pixels: f.mask.data.reduce((a, b) => a + b, 0) };
  }
  return Promise.resolve({ segment_image_px: latent * 8, segment_s: round(seconds, 2), segment_fits: fits });
}
