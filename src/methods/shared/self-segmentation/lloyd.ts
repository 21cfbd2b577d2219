/**
 * scikit-learn 1.2.1's `_kmeans_single_lloyd` with `lloyd_iter_chunked_dense` (float32, dense X), as kmeans.ts
 * runs it per initialisation: E-step labels from the sgemm distances ||c||^2 - 2 x.c (first minimum), M-step sums
 * per thread block of 256-sample chunks, empty-cluster relocation, centers *= float32(1 / count), the stopping
 * rules and the final E-step, and the float32 inertia.
 */
import type { KMeansInitTrace, KMeansOptions } from './kmeans.js';
import { pairwiseSumF32, squaredDistanceF32, staticBlock } from './numpy-float32.js';

const f32 = Math.fround;

/** lloyd_iter_chunked_dense's CHUNK_SIZE. */
const CHUNK_SIZE = 256;

/** The centered samples Xc [n, f] (row-major float32). */
export interface Data {
  x: Float32Array;
  n: number;
  f: number;
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

export function lloyd(
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
