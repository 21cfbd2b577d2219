/**
 * scikit-learn 1.2.1's `KMeans(n_clusters, n_init, init='k-means++', algorithm='lloyd').fit(X)` on a float32 X,
 * drawing from a NumPy legacy RandomState, as the self-segmentation of Cross-Image Attention runs it (the reference
 * hands sklearn a float32 numpy array, so every computation below is sklearn's float32 path):
 *
 *   tol = mean(var(X, axis=0)) * 1e-4           (uncentered X; float32 var and mean, the product in float64)
 *   Xc = X - X.mean(axis=0)                     (float32)
 *   per init (n_init times, one RandomState):
 *     k-means++: first = randint(n); then per further center uniform(2 + int(ln k)) * pot -> searchsorted on the
 *       float64 cumsum of the current squared distances (left, clipped); the candidate with the smallest potential
 *       (first on ties) is kept. Squared distances are sklearn's float32 "upcast" path: rows in float64,
 *       -2 x.y + ||x||^2 + ||y||^2, cast to float32, clipped at 0; potentials are NumPy float32 pairwise sums.
 *     Lloyd (lloyd_iter_chunked_dense): E-step label = first argmin_j ||c_j||^2 - 2 x.c_j (float32, the dot as the
 *       sgemm kernel's sequential multiply-add chain); M-step float32 sums in sample order per thread block of
 *       256-sample chunks, empty clusters re-seeded with the farthest samples, centers *= float32(1 / count);
 *       stop when the labels repeat (strict) or sum(center_shift^2) <= tol, else after max_iter; a final E-step
 *       when not strict; inertia = float32 sum of squared distances (per thread block, then combined).
 *   best: init 0, replaced by a later one only if its inertia is smaller AND its labels are not the same
 *     partition (_is_same_clustering, checked one way as sklearn does); cluster_centers = best centers + mean.
 *
 * Every stage is recorded (KMeansInitTrace) so that the golden trace can be compared stage by stage.
 */
import { invalidParameterError } from '../../../errors.js';
import type { LegacyRandomState } from './mt19937.js';
import { columnMeanF32, columnVarianceF32, pairwiseSumF32, squaredDistanceF32, staticBlock } from './numpy-float32.js';

const f32 = Math.fround;

/** lloyd_iter_chunked_dense's CHUNK_SIZE. */
const CHUNK_SIZE = 256;

export interface KMeansOptions {
  readonly nClusters: number;
  readonly nInit: number;
  readonly maxIter: number;
  /** Relative tolerance (scaled by the mean variance of X). */
  readonly tol: number;
  /**
   * OpenMP threads the reference ran with (its M-step and inertia sums are split in static blocks per thread and
   * combined; with 2 threads the combination is order-independent). The cia-tiny golden ran with 2.
   */
  readonly nThreads: number;
}

export const SKLEARN_KMEANS_DEFAULTS: Readonly<KMeansOptions> = Object.freeze({ nClusters: 8, nInit: 10, maxIter: 300, tol: 1e-4, nThreads: 2 });

/** What one initialisation did (shapes as in the golden: per further center, per local trial). */
export interface KMeansInitTrace {
  firstCenter: number;
  /** [(k - 1) * trials] RandomState.uniform draws. */
  uniforms: Float64Array;
  /** [(k - 1) * trials] searchsorted candidates. */
  candidateIds: Int32Array;
  /** [(k - 1) * trials] potential of each candidate (float32). */
  candidatesPot: Float32Array;
  /** [k] potential after each chosen center (float32). */
  currentPot: Float32Array;
  /** [k] chosen sample indices. */
  indices: Int32Array;
  /** Labels after the E-step of every Lloyd iteration. */
  iterLabels: Int32Array[];
  /** sum(center_shift^2) after every M-step. */
  centerShiftTot: number[];
  nIter: number;
  strictConvergence: boolean;
  labels: Int32Array;
  /** [k * F] final centers in centered coordinates. */
  centers: Float32Array;
  /** float32 inertia. */
  inertia: number;
}

export interface KMeansFit {
  labels: Int32Array;
  /** [k * F] best centers + mean (float32). */
  clusterCenters: Float32Array;
  inertia: number;
  bestInit: number;
  xMean: Float32Array;
  /** Absolute tolerance used by Lloyd. */
  tol: number;
  nLocalTrials: number;
  inits: KMeansInitTrace[];
}

interface Data {
  x: Float32Array;
  n: number;
  f: number;
}

/**
 * sklearn's `_euclidean_distances` float32 path for rows of Xc against all rows: float64 math
 * (-2 x.y + ||x||^2 + ||y||^2; the float64 dot's summation order is immaterial once cast), float32 result clipped at 0.
 */
function upcastSquaredDistances(d: Data, rows: readonly number[], norms64: Float64Array): Float32Array[] {
  const { x, n, f } = d;
  const out = rows.map(() => new Float32Array(n));
  const [a = 0, b = a, c = a] = rows;
  const ao = a * f;
  const bo = b * f;
  const co = c * f;
  for (let j = 0; j < n; j++) {
    const yo = j * f;
    let da = 0;
    let db = 0;
    let dc = 0;
    for (let q = 0; q < f; q++) {
      const y = x[yo + q]!;
      da += x[ao + q]! * y;
      db += x[bo + q]! * y;
      dc += x[co + q]! * y;
    }
    const dots = [da, db, dc];
    rows.forEach((r, t) => {
      const v = f32(-2 * dots[t]! + norms64[r]! + norms64[j]!);
      out[t]![j] = v > 0 ? v : 0;
    });
  }
  return out;
}

/** searchsorted(cumsum, value, side='left'), clipped to n - 1. */
function searchLeft(cumsum: Float64Array, value: number): number {
  let lo = 0;
  let hi = cumsum.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumsum[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return Math.min(lo, cumsum.length - 1);
}

function kmeansPlusPlus(
  d: Data,
  k: number,
  trials: number,
  rng: LegacyRandomState,
  norms64: Float64Array,
): Omit<KMeansInitTrace, 'iterLabels' | 'centerShiftTot' | 'nIter' | 'strictConvergence' | 'labels' | 'centers' | 'inertia'> {
  const firstCenter = rng.randint(d.n);
  const trace = {
    firstCenter,
    uniforms: new Float64Array((k - 1) * trials),
    candidateIds: new Int32Array((k - 1) * trials),
    candidatesPot: new Float32Array((k - 1) * trials),
    currentPot: new Float32Array(k),
    indices: new Int32Array(k),
  };
  trace.indices[0] = firstCenter;
  let closest = upcastSquaredDistances(d, [firstCenter], norms64)[0]!;
  let pot = pairwiseSumF32(closest);
  trace.currentPot[0] = pot;
  for (let c = 1; c < k; c++) {
    const u = rng.uniform(trials);
    const cumsum = new Float64Array(d.n);
    let acc = 0;
    for (let i = 0; i < d.n; i++) cumsum[i] = acc += closest[i]!;
    let best: { pot: number; dist: Float32Array; id: number } | undefined;
    const ids = Array.from(u, (v) => searchLeft(cumsum, v * pot));
    const dists: Float32Array[] = [];
    for (let t0 = 0; t0 < trials; t0 += 3) dists.push(...upcastSquaredDistances(d, ids.slice(t0, t0 + 3), norms64));
    for (let t = 0; t < trials; t++) {
      const slot = (c - 1) * trials + t;
      const id = ids[t]!;
      const dist = dists[t]!;
      for (let i = 0; i < d.n; i++) if (closest[i]! < dist[i]!) dist[i] = closest[i]!;
      const candPot = pairwiseSumF32(dist);
      trace.uniforms[slot] = u[t]!;
      trace.candidateIds[slot] = id;
      trace.candidatesPot[slot] = candPot;
      if (best === undefined || candPot < best.pot) best = { pot: candPot, dist, id };
    }
    pot = best!.pot;
    closest = best!.dist;
    trace.indices[c] = best!.id;
    trace.currentPot[c] = pot;
  }
  return trace;
}

/** ||c_j||^2 of each center (float32 result of a double sum). */
function centerNorms(centers: Float32Array, k: number, f: number): Float32Array {
  const out = new Float32Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < f; i++) s += centers[j * f + i]! * centers[j * f + i]!;
    out[j] = f32(s);
  }
  return out;
}

/** Centers per pass of the E-step's dot products (their float32 chains interleaved: one read of x per group). */
const GROUP = 5;

/**
 * x_i . c_j for the centers j0 .. j0 + 4 (missing ones read `zero`), each as the sgemm kernel's sequential float32
 * multiply-add chain over the features; written to out[0 .. 4].
 */
function groupDots(x: Float32Array, xo: number, rows: readonly Float32Array[], offsets: readonly number[], f: number, out: Float64Array): void {
  const r0 = rows[0]!;
  const r1 = rows[1]!;
  const r2 = rows[2]!;
  const r3 = rows[3]!;
  const r4 = rows[4]!;
  const o0 = offsets[0]!;
  const o1 = offsets[1]!;
  const o2 = offsets[2]!;
  const o3 = offsets[3]!;
  const o4 = offsets[4]!;
  let d0 = 0;
  let d1 = 0;
  let d2 = 0;
  let d3 = 0;
  let d4 = 0;
  for (let q = 0; q < f; q++) {
    const v = x[xo + q]!;
    d0 = f32(d0 + v * r0[o0 + q]!);
    d1 = f32(d1 + v * r1[o1 + q]!);
    d2 = f32(d2 + v * r2[o2 + q]!);
    d3 = f32(d3 + v * r3[o3 + q]!);
    d4 = f32(d4 + v * r4[o4 + q]!);
  }
  out[0] = d0;
  out[1] = d1;
  out[2] = d2;
  out[3] = d3;
  out[4] = d4;
}

/** E-step of samples [start, end): first argmin of ||c||^2 - 2 x.c, the dot as a float32 multiply-add chain. */
function assign(d: Data, centers: Float32Array, norms: Float32Array, k: number, labels: Int32Array, range: { start: number; end: number }): void {
  const { x, f } = d;
  const zero = new Float32Array(f);
  const dots = new Float64Array(k + GROUP);
  const part = new Float64Array(GROUP);
  const groups: { j0: number; rows: Float32Array[]; offsets: number[] }[] = [];
  for (let j0 = 0; j0 < k; j0 += GROUP) {
    const slots = [0, 1, 2, 3, 4].map((g) => j0 + g);
    groups.push({ j0, rows: slots.map((j) => (j < k ? centers : zero)), offsets: slots.map((j) => (j < k ? j * f : 0)) });
  }
  for (let i = range.start; i < range.end; i++) {
    const xo = i * f;
    for (const { j0, rows, offsets } of groups) {
      groupDots(x, xo, rows, offsets, f, part);
      dots.set(part, j0);
    }
    let label = 0;
    let min = Infinity;
    for (let j = 0; j < k; j++) {
      const dist = f32(norms[j]! - 2 * dots[j]!);
      if (j === 0 || dist < min) {
        min = dist;
        label = j;
      }
    }
    labels[i] = label;
  }
}

/** Chunks of lloyd_iter_chunked_dense and the threads' static blocks of them. */
function chunking(n: number, nThreads: number): { chunks: { start: number; end: number }[]; threads: number } {
  const size = n > CHUNK_SIZE ? CHUNK_SIZE : n;
  const count = Math.floor(n / size) + (n % size > 0 ? 1 : 0);
  const chunks = Array.from({ length: count }, (_, c) => ({ start: c * size, end: Math.min(n, (c + 1) * size) }));
  return { chunks, threads: Math.min(nThreads, count) };
}

/** _relocate_empty_clusters_dense: empty clusters take the samples farthest from their old centers. */
function relocateEmpty(d: Data, old: Float32Array, sums: Float32Array, weights: Float32Array, labels: Int32Array, k: number): void {
  const empty = [...weights.keys()].filter((j) => weights[j] === 0);
  if (empty.length === 0) return;
  const { x, n, f } = d;
  const dist = new Float32Array(n);
  const row = new Float32Array(f);
  for (let i = 0; i < n; i++) {
    const lo = labels[i]! * f;
    for (let q = 0; q < f; q++) {
      const v = f32(x[i * f + q]! - old[lo + q]!);
      row[q] = f32(v * v);
    }
    dist[i] = pairwiseSumF32(row);
  }
  if (Math.max(...dist) === 0) return;
  // argpartition's top n_empty, largest first (ties: the lower index; NumPy's introselect leaves them unspecified).
  const far = [...dist.keys()].sort((a, b) => dist[b]! - dist[a]! || a - b).slice(0, empty.length);
  empty.forEach((target, e) => {
    const s = far[e]!;
    const from = labels[s]!;
    for (let q = 0; q < f; q++) {
      sums[from * f + q] = f32(sums[from * f + q]! - x[s * f + q]!);
      sums[target * f + q] = x[s * f + q]!;
    }
    weights[target] = 1;
    weights[from] = f32(weights[from]! - 1);
  });
  void k;
}

/** One lloyd_iter_chunked_dense with update_centers: labels from `old`, returns the new centers and the shifts. */
function lloydIteration(d: Data, old: Float32Array, k: number, labels: Int32Array, nThreads: number): { centers: Float32Array; shift: Float32Array } {
  const { x, n, f } = d;
  const norms = centerNorms(old, k, f);
  const { chunks, threads } = chunking(n, nThreads);
  const sums = new Float32Array(k * f);
  const weights = new Float32Array(k);
  for (let t = 0; t < threads; t++) {
    const block = staticBlock(chunks.length, threads, t);
    const local = new Float32Array(k * f);
    const localW = new Float32Array(k);
    for (let c = block.start; c < block.end; c++) {
      const chunk = chunks[c]!;
      assign(d, old, norms, k, labels, chunk);
      for (let i = chunk.start; i < chunk.end; i++) {
        const lo = labels[i]! * f;
        for (let q = 0; q < f; q++) local[lo + q] = f32(local[lo + q]! + x[i * f + q]!);
        localW[labels[i]!] = f32(localW[labels[i]!]! + 1);
      }
    }
    for (let q = 0; q < k * f; q++) sums[q] = f32(sums[q]! + local[q]!);
    for (let j = 0; j < k; j++) weights[j] = f32(weights[j]! + localW[j]!);
  }
  relocateEmpty(d, old, sums, weights, labels, k);
  for (let j = 0; j < k; j++) {
    if (!(weights[j]! > 0)) continue;
    const alpha = f32(1 / weights[j]!);
    for (let q = 0; q < f; q++) sums[j * f + q] = f32(sums[j * f + q]! * alpha);
  }
  const shift = new Float32Array(k);
  for (let j = 0; j < k; j++) shift[j] = f32(Math.sqrt(squaredDistanceF32(sums, j * f, old, j * f, f)));
  return { centers: sums, shift };
}

/** _inertia_dense: float32 sums of squared distances per thread block, combined in thread order. */
function inertiaOf(d: Data, centers: Float32Array, labels: Int32Array, nThreads: number): number {
  let total = 0;
  for (let t = 0; t < nThreads; t++) {
    const { start, end } = staticBlock(d.n, nThreads, t);
    let part = 0;
    for (let i = start; i < end; i++) part = f32(part + squaredDistanceF32(d.x, i * d.f, centers, labels[i]! * d.f, d.f));
    total = f32(total + part);
  }
  return total;
}

function lloyd(
  d: Data,
  init: Float32Array,
  k: number,
  options: KMeansOptions,
  tol: number,
): Pick<KMeansInitTrace, 'iterLabels' | 'centerShiftTot' | 'nIter' | 'strictConvergence' | 'labels' | 'centers' | 'inertia'> {
  let centers = init;
  const labels = new Int32Array(d.n).fill(-1);
  let labelsOld = Int32Array.from(labels);
  const iterLabels: Int32Array[] = [];
  const centerShiftTot: number[] = [];
  let strict = false;
  let i = 0;
  for (; i < options.maxIter; i++) {
    const step = lloydIteration(d, centers, k, labels, options.nThreads);
    centers = step.centers;
    iterLabels.push(Int32Array.from(labels));
    const shiftTot = pairwiseSumF32(step.shift.map((s) => f32(s * s)));
    centerShiftTot.push(shiftTot);
    if (labels.every((v, j) => v === labelsOld[j])) {
      strict = true;
      break;
    }
    if (shiftTot <= tol) break;
    labelsOld = Int32Array.from(labels);
  }
  const nIter = Math.min(i + 1, options.maxIter);
  if (!strict) assign(d, centers, centerNorms(centers, k, d.f), k, labels, { start: 0, end: d.n });
  return { iterLabels, centerShiftTot, nIter, strictConvergence: strict, labels, centers, inertia: inertiaOf(d, centers, labels, options.nThreads) };
}

/** sklearn's _is_same_clustering: labels1 maps onto labels2 consistently (checked in one direction only). */
export function isSameClustering(labels1: Int32Array, labels2: Int32Array, k: number): boolean {
  const mapping = new Int32Array(k).fill(-1);
  for (let i = 0; i < labels1.length; i++) {
    const a = labels1[i]!;
    if (mapping[a] === -1) mapping[a] = labels2[i]!;
    else if (mapping[a] !== labels2[i]) return false;
  }
  return true;
}

function checkOptions(n: number, f: number, x: Float32Array, o: KMeansOptions): void {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(f) || f < 1) throw invalidParameterError('kmeans samples x features', 'positive integers', [n, f]);
  if (x.length !== n * f) throw invalidParameterError('kmeans X.length', `${n * f} (${n} samples x ${f} features)`, x.length);
  if (!Number.isInteger(o.nClusters) || o.nClusters < 1 || o.nClusters > n)
    throw invalidParameterError('nClusters', `integer between 1 and the number of samples (${n})`, o.nClusters);
  if (!Number.isInteger(o.nInit) || o.nInit < 1) throw invalidParameterError('nInit', 'positive integer', o.nInit);
  if (!Number.isInteger(o.maxIter) || o.maxIter < 1) throw invalidParameterError('maxIter', 'positive integer', o.maxIter);
  if (!Number.isInteger(o.nThreads) || o.nThreads < 1) throw invalidParameterError('nThreads', 'positive integer', o.nThreads);
  if (!(o.tol >= 0)) throw invalidParameterError('tol', 'number >= 0', o.tol);
  const bad = x.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw invalidParameterError('kmeans X', `finite values (sample ${Math.floor(bad / f)}, feature ${bad % f} is ${x[bad]})`, x[bad]);
}

/** Fit k-means on X [n, f] (row-major float32), drawing from `rng` (advanced as sklearn advances NumPy's global state). */
export function kmeansFit(x: Float32Array, n: number, f: number, rng: LegacyRandomState, options: Partial<KMeansOptions> = {}): KMeansFit {
  const o: KMeansOptions = { ...SKLEARN_KMEANS_DEFAULTS, ...options };
  checkOptions(n, f, x, o);
  const k = o.nClusters;
  const meanVar = pairwiseSumF32(columnVarianceF32(x, n, f)) / f;
  const tol = o.tol === 0 ? 0 : f32(meanVar) * o.tol;
  const xMean = columnMeanF32(x, n, f);
  const xc = x.map((v, i) => f32(v - xMean[i % f]!));
  const d: Data = { x: xc, n, f };
  const norms64 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let q = 0; q < f; q++) s += xc[i * f + q]! * xc[i * f + q]!;
    norms64[i] = s;
  }
  const trials = 2 + Math.floor(Math.log(k));
  const inits: KMeansInitTrace[] = [];
  let best = -1;
  for (let i = 0; i < o.nInit; i++) {
    const init = kmeansPlusPlus(d, k, trials, rng, norms64);
    const start = new Float32Array(k * f);
    init.indices.forEach((s, j) => start.set(xc.subarray(s * f, (s + 1) * f), j * f));
    const run = lloyd(d, start, k, o, tol);
    inits.push({ ...init, ...run });
    const kept = inits[best];
    if (kept === undefined || (run.inertia < kept.inertia && !isSameClustering(run.labels, kept.labels, k))) best = i;
  }
  const chosen = inits[best]!;
  return {
    labels: Int32Array.from(chosen.labels),
    clusterCenters: chosen.centers.map((v, i) => f32(v + xMean[i % f]!)),
    inertia: chosen.inertia,
    bestInit: best,
    xMean,
    tol,
    nLocalTrials: trials,
    inits,
  };
}
