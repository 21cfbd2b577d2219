/**
 * Prompt Mixing's cluster-to-noun assignment and object mask (Cross-Image Attention's utils/segmentation.py,
 * `Segmentor.cluster2noun` / `create_mask`), with the reference's arithmetic and Python semantics:
 *
 *   noun map j     = head-averaged cross-attention column of token (word index + 1) on the coarse map (float32)
 *   normalized j   = repeat x2 on both axes, then (m - |min m|) / max m (float32; not a min-max normalisation)
 *   score[c][j]    = sum(mask_c * normalized_j) / |mask_c| (int32 mask x float32 map -> float64, pairwise sum)
 *   threshold      = 1.4 * mean of the clusters' best scores without the overall best (list.remove drops the
 *                    entry max() returned: Python max keeps the first of equal values)
 *   assignment c   = argmax_j score[c][j] (first) if max_j score[c][j] > threshold, else 'BG'
 *   mask           = 1 on the clusters whose assigned word is an object noun ('BG' tests its letter 'G', as
 *                    `cluster2noun[c][1]` does on the string 'BG')
 *
 * Generalisation beyond the reference's square maps: the repeated noun map is cropped to the cluster map's
 * height and width (identical to np.repeat when the coarse map is exactly half the fine one, as for SD and every
 * even latent size).
 */
import { invalidParameterError } from '../../../errors.js';
import { pairwiseSumF64 } from './numpy-float32.js';

const f32 = Math.fround;

/** A noun of the prompt: its word index (nltk word_tokenize) and the word. */
export interface PromptNoun {
  readonly index: number;
  readonly word: string;
}

/** A head-averaged attention map of one image: [height * width, keys], row-major over the token map. */
export interface AttentionMap {
  readonly data: Float32Array;
  readonly height: number;
  readonly width: number;
  readonly keys: number;
}

export interface ClusterNouns {
  /** [hc, wc, nouns] noun maps (float32), hc x wc the cross-attention map. */
  nounMaps: Float32Array;
  nounMapSize: { height: number; width: number };
  /** [h, w, nouns] normalised, upsampled noun maps (float32). */
  normalizedNounMaps: Float32Array;
  /** [k, nouns] scores (float64). */
  scores: Float64Array;
  threshold: number;
  /** Per cluster: the word index of its noun, or -1 for 'BG'. */
  assignment: Int32Array;
  /** Per cluster: max score - threshold (the decision's margin). */
  margin: Float64Array;
  /** [h * w] 0/1 object mask. */
  mask: Uint8Array;
}

/** Python's `max(iterable)`: the first element no later element is greater than (NaN never replaces nor is replaced). */
function pyMaxIndex(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** NumPy's argmax: the first maximum, or the first NaN. */
function npArgmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]!)) return i;
    if (values[i]! > values[best]!) best = i;
  }
  return best;
}

function normalizedMaps(
  cross: AttentionMap,
  nouns: readonly PromptNoun[],
  height: number,
  width: number,
): { nounMaps: Float32Array; normalized: Float32Array } {
  const { height: hc, width: wc, keys } = cross;
  const m = nouns.length;
  const nounMaps = new Float32Array(hc * wc * m);
  const normalized = new Float32Array(height * width * m);
  nouns.forEach((noun, j) => {
    const token = noun.index + 1;
    if (token >= keys) throw invalidParameterError(`noun '${noun.word}' token`, `index below the ${keys} text tokens`, token);
    for (let p = 0; p < hc * wc; p++) nounMaps[p * m + j] = cross.data[p * keys + token]!;
    let min = Infinity;
    let max = -Infinity;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const v = nounMaps[(Math.floor(y / 2) * wc + Math.floor(x / 2)) * m + j]!;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    const shift = Math.abs(min);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const v = nounMaps[(Math.floor(y / 2) * wc + Math.floor(x / 2)) * m + j]!;
        normalized[(y * width + x) * m + j] = f32(f32(v - shift) / max);
      }
  });
  return { nounMaps, normalized };
}

/**
 * cluster2noun and create_mask for one fit: `labels` [height * width] from k-means over the fine map, `cross` the
 * image's head-averaged cross-attention at the coarse level (half the fine map's size).
 */
export function clusterToNoun(
  labels: Int32Array,
  map: { height: number; width: number; clusters: number },
  cross: AttentionMap,
  nouns: { nouns: readonly PromptNoun[]; objectNouns: readonly string[] },
): ClusterNouns {
  const { height, width, clusters: k } = map;
  const m = nouns.nouns.length;
  if (m === 0) throw invalidParameterError('nouns', 'at least one noun of the prompt', []);
  if (k < 2) throw invalidParameterError('clusters', 'at least 2 (the threshold averages the other clusters)', k);
  if (labels.length !== height * width) throw invalidParameterError('labels.length', `${height * width} (${height}x${width})`, labels.length);
  if (Math.ceil(height / 2) !== cross.height || Math.ceil(width / 2) !== cross.width) {
    throw invalidParameterError(
      'cross-attention map size',
      `${Math.ceil(height / 2)}x${Math.ceil(width / 2)} (half the ${height}x${width} cluster map)`,
      `${cross.height}x${cross.width}`,
    );
  }
  const { nounMaps, normalized } = normalizedMaps(cross, nouns.nouns, height, width);
  const scores = new Float64Array(k * m);
  const products = new Float64Array(height * width);
  for (let c = 0; c < k; c++) {
    let count = 0;
    for (let p = 0; p < labels.length; p++) if (labels[p] === c) count++;
    for (let j = 0; j < m; j++) {
      for (let p = 0; p < labels.length; p++) products[p] = labels[p] === c ? normalized[p * m + j]! : 0;
      scores[c * m + j] = pairwiseSumF64(products) / count;
    }
  }
  const best = Array.from({ length: k }, (_, c) => scores[c * m + pyMaxIndex(scores.subarray(c * m, (c + 1) * m))]!);
  // max_score starts as the int 0 and becomes max(best[c], max_score) cluster by cluster (first argument kept on ties).
  let maxOwner = -1;
  for (let c = 0; c < k; c++) if (!((maxOwner < 0 ? 0 : best[maxOwner]!) > best[c]!)) maxOwner = c;
  const owner = maxOwner >= 0 ? maxOwner : best.findIndex((v) => v === 0);
  if (owner < 0) throw invalidParameterError('cluster scores', 'a best score to drop (list.remove found none)', best);
  const others = best.filter((_, c) => c !== owner);
  let total = 0;
  for (const v of others) total += v;
  const threshold = 1.4 * (total / others.length);
  const assignment = new Int32Array(k);
  const margin = new Float64Array(k);
  const objects = new Set(nouns.objectNouns);
  const inMask = new Uint8Array(k);
  for (let c = 0; c < k; c++) {
    const row = scores.subarray(c * m, (c + 1) * m);
    const top = row[pyMaxIndex(row)]!;
    margin[c] = top - threshold;
    const assigned = top > threshold ? nouns.nouns[npArgmax(row)]! : undefined;
    assignment[c] = assigned === undefined ? -1 : assigned.index;
    inMask[c] = objects.has(assigned === undefined ? 'G' : assigned.word) ? 1 : 0;
  }
  const mask = Uint8Array.from(labels, (c) => inMask[c]!);
  return { nounMaps, nounMapSize: { height: cross.height, width: cross.width }, normalizedNounMaps: normalized, scores, threshold, assignment, margin, mask };
}
