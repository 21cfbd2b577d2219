/**
 * The float32 reductions NumPy and scikit-learn's Cython code perform, in their order of operations (each partial
 * result rounded to float32 with Math.fround), so that sums, means and distances round as the reference's do.
 */

const f32 = Math.fround;

/** Below this length NumPy's pairwise summation adds 8 interleaved partial sums; above it it splits in two. */
const PAIRWISE_BLOCK = 128;

/**
 * NumPy's float32 `sum` of a contiguous run (`FLOAT_pairwise_sum`, added to the reduction's 0): fewer than 8
 * values are added in order; up to 128 use 8 partial sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus the
 * tail in order; longer runs split at n/2 rounded down to a multiple of 8. Checked against NumPy for n = 1..5000.
 */
export function pairwiseSumF32(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  return f32(0 + pairwise(a, start, n, f32));
}

/** The same pairwise summation in float64 (NumPy's `sum` of a float64 array). */
export function pairwiseSumF64(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  return 0 + pairwise(a, start, n, (v) => v);
}

function pairwise(a: ArrayLike<number>, start: number, n: number, round: (v: number) => number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = round(res + a[start + i]!);
    return res;
  }
  if (n <= PAIRWISE_BLOCK) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => a[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = round(r[j]! + a[start + i + j]!);
    const sum2 = (p: number, q: number): number => round(r[p]! + r[q]!);
    let res = round(round(sum2(0, 1) + sum2(2, 3)) + round(sum2(4, 5) + sum2(6, 7)));
    for (; i < n; i++) res = round(res + a[start + i]!);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return round(pairwise(a, start, n2, round) + pairwise(a, start + n2, n - n2, round));
}

/**
 * NumPy's float32 `X.mean(axis=0)` of a C-contiguous [rows, cols] matrix: the rows are added in order (an axis-0
 * reduction is not pairwise), then divided by the row count in float32.
 */
export function columnMeanF32(x: Float32Array, rows: number, cols: number): Float32Array {
  const sum = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let k = 0; k < cols; k++) sum[k] = f32(sum[k]! + x[o + k]!);
  }
  for (let k = 0; k < cols; k++) sum[k] = f32(sum[k]! / rows);
  return sum;
}

/** NumPy's float32 `np.var(X, axis=0)`: mean as above, squared deviations in float32, added in row order, / rows. */
export function columnVarianceF32(x: Float32Array, rows: number, cols: number): Float32Array {
  const mean = columnMeanF32(x, rows, cols);
  const acc = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let k = 0; k < cols; k++) {
      const d = f32(x[o + k]! - mean[k]!);
      acc[k] = f32(acc[k]! + f32(d * d));
    }
  }
  for (let k = 0; k < cols; k++) acc[k] = f32(acc[k]! / rows);
  return acc;
}

/**
 * scikit-learn's `_euclidean_dense_dense(a, b, n, squared=True)` (float32): the squared differences in groups of
 * four, each group summed left to right and added to the running float32 result, then the remainder one by one.
 */
export function squaredDistanceF32(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, n: number): number {
  let result = 0;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    const d0 = f32(a[aOffset + i]! - b[bOffset + i]!);
    const d1 = f32(a[aOffset + i + 1]! - b[bOffset + i + 1]!);
    const d2 = f32(a[aOffset + i + 2]! - b[bOffset + i + 2]!);
    const d3 = f32(a[aOffset + i + 3]! - b[bOffset + i + 3]!);
    result = f32(result + f32(f32(f32(f32(d0 * d0) + f32(d1 * d1)) + f32(d2 * d2)) + f32(d3 * d3)));
  }
  for (; i < n; i++) {
    const d = f32(a[aOffset + i]! - b[bOffset + i]!);
    result = f32(result + f32(d * d));
  }
  return result;
}

/** The contiguous block of `count` items OpenMP's static schedule (libgomp) gives thread `t` of `threads`. */
export function staticBlock(count: number, threads: number, t: number): { start: number; end: number } {
  let q = Math.floor(count / threads);
  let r = count % threads;
  if (t < r) {
    r = 0;
    q++;
  }
  const start = q * t + r;
  return { start, end: start + q };
}
