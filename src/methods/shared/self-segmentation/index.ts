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
 *   3. `mapsFromOutputs(result.outputs, { rows, latent })` -> `selfSegment(maps, { nouns, objectNouns })`; or
 *      all of 2-3 at once: `segmentationCall({ rows, latent, prompt, objectNouns })` gives the feeds and a
 *      `masks(outputs)` with the latent-size masks for masked AdaIN (refusing masks of fewer than 2 pixels).
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
import {
  SEGMENTATION_MAP_NAMES,
  SEGMENTATION_MAPS,
  SEGMENTATION_ROWS_INPUT,
  segmentationOutput,
  segmentationSites,
  withSegmentationMaps,
  type SegmentationMapName,
} from './recording.js';

export { clusterToNoun, kmeansFit, LegacyRandomState, segmentationSites, SEGMENTATION_MAP_NAMES, SEGMENTATION_ROWS_INPUT, segmentationOutput };
export type { AttentionMap, ClusterNouns, KMeansFit, PromptNoun, SegmentationMapName };
export { SEGMENTATION_MAPS, withSegmentationMaps };

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
    throw invalidParameterError(`${name} self-attention map`, `[${n}, ${n}] (${map.height}x${map.width} tokens attending to themselves)`, [
      map.data.length / map.keys,
      map.keys,
    ]);
  }
}

/** Cluster both images' maps and score the clusters against the nouns; the masks the reference computes. */
export function selfSegment(
  maps: { readonly style: ImageSegmentationMaps; readonly struct: ImageSegmentationMaps },
  options: SelfSegmentationOptions,
): SelfSegmentation {
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
    throw invalidParameterError(
      'prompt',
      `a prompt containing the object word(s) ${objectNouns.map((w) => `'${w}'`).join(', ')} (self-segmentation scores clusters against them)`,
      prompt,
    );
  }
  return nouns;
}

/** Feeds of the recording call: the batch rows whose maps the UNet writes. */
export function segmentationFeeds(rows: readonly number[]): Record<string, Tensor> {
  return { [SEGMENTATION_ROWS_INPUT]: { dtype: 'int64', dims: [rows.length], data: BigInt64Array.from(rows, (r) => BigInt(r)) } };
}

/**
 * The two images' maps from a recording call's outputs: `rows` are the positions of the style and struct rows in
 * the fed `segmentation_rows` list; each map's token grid follows from its resolution level (SEGMENTATION_MAPS).
 */
export function mapsFromOutputs(
  outputs: Readonly<Record<string, Tensor>>,
  layout: { readonly rows: { readonly style: number; readonly struct: number }; readonly latent: { readonly height: number; readonly width: number } },
): { style: ImageSegmentationMaps; struct: ImageSegmentationMaps } {
  const pick = (row: number): ImageSegmentationMaps => {
    const out = {} as Record<SegmentationMapName, AttentionMap>;
    for (const name of SEGMENTATION_MAP_NAMES) {
      const t = outputs[segmentationOutput(name)];
      const { height, width } = tokenMapSize(SEGMENTATION_MAPS[name], layout.latent);
      const [r, s, keys] = t?.dims ?? [];
      if (t === undefined || t.dtype !== 'float32' || r === undefined || s !== height * width || keys === undefined || row >= r) {
        throw invalidParameterError(
          `UNet output ${segmentationOutput(name)}`,
          `float32 [rows > ${row}, ${height * width}, keys] maps (was segmentation_rows fed?)`,
          t?.dims,
        );
      }
      const size = s * keys;
      out[name] = { data: (t.data as Float32Array).slice(row * size, (row + 1) * size), height, width, keys };
    }
    return out;
  };
  return { style: pick(layout.rows.style), struct: pick(layout.rows.struct) };
}

/** The masks of a recording call, ready for masked AdaIN, and the whole segmentation. */
export interface SegmentationMasks {
  /** 0/1 float32 masks at the latent size (the *_64 masks): the structure's is AdaIN's content mask. */
  readonly structure: Float32Array;
  readonly appearance: Float32Array;
  readonly result: SelfSegmentation;
  /** Seconds spent clustering and scoring (the UNet call not included). */
  readonly seconds: number;
}

/** What a method needs for self-segmentation on one UNet call of its loop. */
export interface SegmentationCall {
  /** Extra feeds of the recording call. */
  readonly feeds: Readonly<Record<string, Tensor>>;
  /** The masks from that call's outputs. */
  masks(outputs: Readonly<Record<string, Tensor>>): SegmentationMasks;
}

/** Fewest object pixels masked AdaIN can use (its unbiased variance; the reference gives NaN below). */
const MIN_OBJECT_PIXELS = 2;

/**
 * Self-segmentation on one UNet call of a method's batch: `rows` are the batch rows of the appearance (style) and
 * structure images (conditioned on the prompt), `latent` the latent map size; the nouns are the object words
 * found in the prompt (promptNouns). A mask with fewer than 2 object pixels is refused with an error naming the
 * image (the reference's masked AdaIN would turn the output into NaN).
 */
export function segmentationCall(options: {
  readonly rows: { readonly style: number; readonly struct: number };
  readonly latent: { readonly height: number; readonly width: number };
  readonly prompt: string;
  readonly objectNouns: readonly string[];
}): SegmentationCall {
  const nouns = promptNouns(options.prompt, options.objectNouns);
  return {
    feeds: segmentationFeeds([options.rows.style, options.rows.struct]),
    masks(outputs) {
      const started = performance.now();
      const maps = mapsFromOutputs(outputs, { rows: { style: 0, struct: 1 }, latent: options.latent });
      const result = selfSegment(maps, { nouns, objectNouns: options.objectNouns });
      const check = (mask: SegmentMask, image: string): Float32Array => {
        const ones = mask.data.reduce((n, v) => n + v, 0);
        if (ones < MIN_OBJECT_PIXELS) {
          throw invalidParameterError(
            `self-segmentation mask of the ${image} image`,
            `at least ${MIN_OBJECT_PIXELS} pixels of ${options.objectNouns.map((w) => `'${w}'`).join(', ')} (clusters: ${[...result.fits[image === 'structure' ? 'struct_64' : 'style_64'].nouns.assignment].map((a) => (a < 0 ? 'BG' : nouns.find((n) => n.index === a)?.word)).join(', ')})`,
            `${ones} of ${mask.data.length} pixels`,
          );
        }
        return Float32Array.from(mask.data);
      };
      const seconds = (performance.now() - started) / 1000;
      return { structure: check(result.masks.structure, 'structure'), appearance: check(result.masks.appearance, 'appearance'), result, seconds };
    },
  };
}
