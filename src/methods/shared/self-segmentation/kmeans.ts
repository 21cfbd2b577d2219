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
import { lloyd, type Data } from './lloyd.js';
import { columnMeanF32, columnVarianceF32, pairwiseSumF32 } from './numpy-float32.js';

const f32 = Math.fround;

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
