/**
 * Self-segmentation (Prompt Mixing, as Cross-Image Attention's utils/segmentation.py runs it): object masks of the
 * structure and appearance images from the UNet's own attention maps, for any method.
 *
 * Use:
 *   1. Build the method's UNet with `withSegmentationMaps(plan, unetConfig)` (recording.ts): the four modules of
 *      SEGMENTATION_MAPS write `segmentation.<map>` outputs when the call is fed `segmentationFeeds(rows)`.
 *   2. On the ONE UNet call where the reference records (Cross-Image Attention: the no-swap pass of the iteration
 *      whose callback computes the masks, i.e. the iteration that sees model.step == adain_range.start - 1), feed
 *      the batch rows of the appearance (style) and structure images, conditioned on the prompt.
 *   3. `mapsFromOutputs(result.outputs, unet, rows, latent)` -> `selfSegment(maps, { nouns, objectNouns })`.
 *
 *   selfSegment({ style, struct }, options): SelfSegmentation
 *     fits.<style|struct>_<32|64>: the k-means fit (with its trace) and the cluster-to-noun scoring
 *     masks.appearance / masks.structure: the *_64 masks (latent size; what masked AdaIN uses)
 *     masks.appearance32 / masks.structure32: the *_32 masks (half size; computed, unused by the reference)
 *
 * The reference's steps: `np.random.seed(1)`, then KMeans(n_clusters=5, n_init=10).fit of the style image's
 * head-averaged self-attention rows at SD 32x32, then the structure's, from the same RandomState; seed(1) again and
 * the same at 64x64 (kmeans.ts, mt19937.ts). Each clustering is scored against the prompt's nouns with the
 * cross-attention one level coarser (cluster2noun.ts). An empty mask is returned as such (the caller decides:
 * the reference's masked AdaIN turns it into NaN).
 */
import { invalidParameterError } from '../../../errors.js';
import { tokenMapSize } from '../../../models/unet/attention-processor.js';
import type { Tensor } from '../../../tensor/tensor.js';
import { clusterToNoun, type AttentionMap, type ClusterNouns, type PromptNoun } from './cluster2noun.js';
import { kmeansFit, type KMeansFit } from './kmeans.js';
import { LegacyRandomState } from './mt19937.js';
import { SEGMENTATION_MAP_NAMES, SEGMENTATION_ROWS_INPUT, segmentationOutput, segmentationSites, type SegmentationMapName } from './recording.js';

export { clusterToNoun, kmeansFit, LegacyRandomState, segmentationSites, SEGMENTATION_MAP_NAMES, SEGMENTATION_ROWS_INPUT, segmentationOutput };
export type { AttentionMap, ClusterNouns, KMeansFit, PromptNoun, SegmentationMapName };
export { SEGMENTATION_MAPS, withSegmentationMaps } from './recording.js';

/** The four maps of one image, head-averaged, [tokens, keys] each. */
export type ImageSegmentationMaps = Readonly<Record<SegmentationMapName, AttentionMap>>;

export type SegmentationFitName = 'style_32' | 'struct_32' | 'style_64' | 'struct_64';

/** The fits in the reference's order (and RandomState use): seed(1), 32 style, 32 struct; seed(1), 64 style, 64 struct. */
export const SEGMENTATION_FITS: readonly { name: SegmentationFitName; image: 'style' | 'struct'; self: SegmentationMapName; cross: SegmentationMapName }[] = [
  { name: 'style_32', image: 'style', self: 'self_attention_32', cross: 'cross_attention_32' },
  { name: 'struct_32', image: 'struct', self: 'self_attention_32', cross: 'cross_attention_32' },
  { name: 'style_64', image: 'style', self: 'self_attention_64', cross: 'cross_attention_64' },
  { name: 'struct_64', image: 'struct', self: 'self_attention_64', cross: 'cross_attention_64' },
];

export interface SelfSegmentationOptions {
  /** The prompt's nouns (nltk word index and word; the word's cross-attention token is index + 1). */
  readonly nouns: readonly PromptNoun[];
  /** Words whose clusters form the object mask (the reference: [domain name]). */
  readonly objectNouns: readonly string[];
  /** Segmentor num_segments (reference: 5). */
  readonly numSegments?: number;
  /** KMeans n_init (reference: 10). */
  readonly nInit?: number;
  /** np.random.seed before each resolution (reference: 1). */
  readonly seed?: number;
  /** OpenMP threads of the reference's sklearn (its float32 sums are split per thread; cia-tiny: 2). */
  readonly nThreads?: number;
}

/** A 0/1 mask over a token map. */
export interface SegmentMask {
  readonly data: Uint8Array;
  readonly height: number;
  readonly width: number;
}

export interface SegmentationFit {
  readonly kmeans: KMeansFit;
  readonly nouns: ClusterNouns;
  readonly mask: SegmentMask;
}

export interface SelfSegmentation {
  readonly fits: Readonly<Record<SegmentationFitName, SegmentationFit>>;
  readonly masks: { readonly appearance: SegmentMask; readonly structure: SegmentMask; readonly appearance32: SegmentMask; readonly structure32: SegmentMask };
}

function checkSelfMap(name: string, map: AttentionMap): void {
  const n = map.height * map.width;
  if (map.keys !== n || map.data.length !== n * n) {
    throw invalidParameterError(`${name} self-attention map`, `[${n}, ${n}] (${map.height}x${map.width} tokens attending to themselves)`, [map.data.length / map.keys, map.keys]);
  }
}

/** Cluster both images' maps and score the clusters against the nouns; the masks the reference computes. */
export function selfSegment(maps: { readonly style: ImageSegmentationMaps; readonly struct: ImageSegmentationMaps }, options: SelfSegmentationOptions): SelfSegmentation {
  const k = options.numSegments ?? 5;
  const rng = new LegacyRandomState(options.seed ?? 1);
  const fits = {} as Record<SegmentationFitName, SegmentationFit>;
  let res: SegmentationMapName | undefined;
  for (const fit of SEGMENTATION_FITS) {
    if (fit.self !== res) {
      rng.seed(options.seed ?? 1);
      res = fit.self;
    }
    const self = maps[fit.image][fit.self];
    checkSelfMap(`${fit.image} ${fit.self}`, self);
    const n = self.height * self.width;
    const kmeans = kmeansFit(self.data, n, n, rng, { nClusters: k, nInit: options.nInit ?? 10, nThreads: options.nThreads ?? 2 });
    const nouns = clusterToNoun(kmeans.labels, { height: self.height, width: self.width, clusters: k }, maps[fit.image][fit.cross], options);
    fits[fit.name] = { kmeans, nouns, mask: { data: nouns.mask, height: self.height, width: self.width } };
  }
  return {
    fits,
    masks: { appearance: fits.style_64.mask, structure: fits.struct_64.mask, appearance32: fits.style_32.mask, structure32: fits.struct_32.mask },
  };
}

/**
 * The nouns the reference's Segmentor would find, for prompts whose nouns are the object words: nltk's
 * word_tokenize + pos_tag keep words tagged NN* except photo / image / picture. Without a tagger, we take the words
 * of the prompt (split into words and punctuation as word_tokenize does for plain prompts) that are object words
 * (case-sensitive, as the reference compares them). For "A photo of a bird" both give [(4, 'bird')].
 */
export function promptNouns(prompt: string, objectNouns: readonly string[]): PromptNoun[] {
  const words = prompt.match(/[\p{L}\p{N}_]+(?:'[\p{L}]+)?|[^\s\p{L}\p{N}_]/gu) ?? [];
  const wanted = new Set(objectNouns);
  const nouns = words.flatMap((word, index) => (wanted.has(word) ? [{ index, word }] : []));
  if (nouns.length === 0) {
    throw invalidParameterError('prompt', `a prompt containing the object word(s) ${objectNouns.map((w) => `'${w}'`).join(', ')} (self-segmentation scores clusters against them)`, prompt);
  }
  return nouns;
}

/** Feeds of the recording call: the batch rows whose maps the UNet writes. */
export function segmentationFeeds(rows: readonly number[]): Record<string, Tensor> {
  return { [SEGMENTATION_ROWS_INPUT]: { dtype: 'int64', dims: [rows.length], data: BigInt64Array.from(rows, (r) => BigInt(r)) } };
}

/** What the maps of a UNet call look like to mapsFromOutputs: a site lookup like UNetRunner's. */
export interface SegmentationUNet {
  site(modulePath: string): { readonly level: number };
}

/**
 * The two images' maps from a recording call's outputs: `rows` are the positions of the style and struct rows in
 * the fed `segmentation_rows` list; `sites` the module of each map (segmentationSites of the UNet's config).
 */
export function mapsFromOutputs(
  outputs: Readonly<Record<string, Tensor>>,
  unet: SegmentationUNet,
  layout: { readonly sites: Readonly<Record<SegmentationMapName, string>>; readonly rows: { readonly style: number; readonly struct: number }; readonly latent: { height: number; width: number } },
): { style: ImageSegmentationMaps; struct: ImageSegmentationMaps } {
  const pick = (row: number): ImageSegmentationMaps => {
    const out = {} as Record<SegmentationMapName, AttentionMap>;
    for (const name of SEGMENTATION_MAP_NAMES) {
      const t = outputs[segmentationOutput(name)];
      const { height, width } = tokenMapSize(unet.site(layout.sites[name]), layout.latent);
      const [r, s, keys] = t?.dims ?? [];
      if (t === undefined || t.dtype !== 'float32' || r === undefined || s !== height * width || keys === undefined || row >= r) {
        throw invalidParameterError(`UNet output ${segmentationOutput(name)}`, `float32 [rows > ${row}, ${height * width}, keys] maps (was segmentation_rows fed?)`, t?.dims);
      }
      const size = s * keys;
      out[name] = { data: (t.data as Float32Array).slice(row * size, (row + 1) * size), height, width, keys };
    }
    return out;
  };
  return { style: pick(layout.rows.style), struct: pick(layout.rows.struct) };
}
