/**
 * The one tensor comparison used against goldens: numpy.allclose semantics, elementwise
 *
 *   |actual - expected| <= atol + rtol * |expected|
 *
 * with NaN never close (equal_nan=False), infinities close only to themselves, and integer tensors compared as numbers.
 * The result says how far off the worst element is, where it is, and shows the first violating pairs.
 */
import { AssertionError } from 'node:assert';
import { formatDims, numel, sameDims, type Tensor } from '../tensor/tensor.js';
import { widenBfloat16, widenFloat16 } from '../tensor/dtype.js';

export interface CompareOptions {
  atol: number;
  rtol: number;
  label: string;
}

export interface CompareResult {
  label: string;
  ok: boolean;
  /** Largest |actual - expected| (NaN when a NaN was met). */
  maxAbs: number;
  /** Largest |actual - expected| / |expected| (Infinity where expected is 0 and actual is not). */
  maxRel: number;
  /** Multi-index of the largest violation (of the largest difference when all are within tolerance). */
  worstIndex: number[];
  mismatches: number;
  count: number;
  /** The first few violating elements, in row-major order. */
  pairs: { index: number[]; actual: number; expected: number }[];
  shapeError?: string;
  /** The tolerances used (set by compareTensors; optional so results can also be built by hand). */
  atol?: number;
  rtol?: number;
}

const MAX_PAIRS = 5;

/** Element reader as plain numbers (float16/bfloat16 widened, int64 converted). */
function numbers(t: Tensor): ArrayLike<number> {
  switch (t.dtype) {
    case 'float16':
      return widenFloat16(t.data as Uint16Array);
    case 'bfloat16':
      return widenBfloat16(t.data as Uint16Array);
    case 'int64':
      return Float64Array.from(t.data as BigInt64Array, (v) => Number(v));
    default:
      return t.data as ArrayLike<number>;
  }
}

function unravel(flat: number, dims: readonly number[]): number[] {
  const index = new Array<number>(dims.length).fill(0);
  for (let axis = dims.length - 1; axis >= 0; axis--) {
    const d = dims[axis]!;
    index[axis] = d === 0 ? 0 : flat % d;
    flat = d === 0 ? 0 : Math.floor(flat / d);
  }
  return index;
}

export function compareTensors(actual: Tensor, expected: Tensor, options: CompareOptions): CompareResult {
  const { atol, rtol, label } = options;
  const count = numel(expected.dims);
  if (!sameDims(actual.dims, expected.dims)) {
    return {
      label,
      ok: false,
      maxAbs: NaN,
      maxRel: NaN,
      worstIndex: [],
      mismatches: count,
      count,
      pairs: [],
      atol,
      rtol,
      shapeError: `shape ${formatDims(actual.dims)} differs from expected ${formatDims(expected.dims)}`,
    };
  }
  const a = numbers(actual);
  const e = numbers(expected);
  let maxAbs = 0;
  let maxRel = 0;
  let sawNaN = false;
  let mismatches = 0;
  let worstFlat = -1;
  let worstExcess = -Infinity; // how far the worst violation is beyond its allowance
  let largestFlat = 0;
  const pairs: CompareResult['pairs'] = [];
  for (let i = 0; i < count; i++) {
    const x = a[i]!;
    const y = e[i]!;
    const diff = x === y ? 0 : Math.abs(x - y); // 0 for equal infinities
    if (Number.isNaN(diff)) {
      sawNaN = true;
    } else {
      if (diff > maxAbs) {
        maxAbs = diff;
        largestFlat = i;
      }
      const rel = diff === 0 ? 0 : y === 0 ? Infinity : diff / Math.abs(y);
      if (rel > maxRel) maxRel = rel;
    }
    const allowed = atol + rtol * Math.abs(y);
    // Non-finite values are close only when identical (numpy.isclose); NaN !== NaN.
    const close = Number.isFinite(x) && Number.isFinite(y) ? diff <= allowed : x === y;
    if (!close) {
      mismatches++;
      const excess = Number.isFinite(x) && Number.isFinite(y) ? diff - allowed : Infinity;
      if (excess > worstExcess || worstFlat < 0) {
        worstExcess = excess;
        worstFlat = i;
      }
      if (pairs.length < MAX_PAIRS) pairs.push({ index: unravel(i, expected.dims), actual: x, expected: y });
    }
  }
  return {
    label,
    ok: mismatches === 0,
    maxAbs: sawNaN ? NaN : maxAbs,
    maxRel: sawNaN ? NaN : maxRel,
    worstIndex: count === 0 ? [] : unravel(worstFlat >= 0 ? worstFlat : largestFlat, expected.dims),
    mismatches,
    count,
    pairs,
    atol,
    rtol,
  };
}

/** Compact number for reports: 6 significant digits, exponent form for very small or large magnitudes. */
function num(v: number): string {
  if (!Number.isFinite(v) || v === 0) return String(v);
  if (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) return v.toExponential(3);
  return String(Number(v.toPrecision(6)));
}

/** One line: label, max abs, max rel, PASS/FAIL and, on failure, the worst index and the first pairs. */
export function formatCompare(result: CompareResult): string {
  const head = `${result.label}: ${result.ok ? 'PASS' : 'FAIL'}`;
  if (result.shapeError !== undefined) return `${head} ${result.shapeError}`;
  const tol = result.atol === undefined || result.rtol === undefined ? '' : `atol ${num(result.atol)}, rtol ${num(result.rtol)}, `;
  const stats = `max|diff| ${num(result.maxAbs)} max rel ${num(result.maxRel)} (${tol}n=${result.count})`;
  if (result.ok) return `${head} ${stats}`;
  const pairs = result.pairs.map((p) => `${formatDims(p.index)} ${num(p.actual)} vs ${num(p.expected)}`).join(', ');
  return `${head} ${result.mismatches}/${result.count} elements not close; ${stats}; worst at ${formatDims(result.worstIndex)}; first pairs (actual vs expected): ${pairs}`;
}

/** Throws an AssertionError with formatCompare's line when the tensors are not close. */
export function expectClose(actual: Tensor, expected: Tensor, options: CompareOptions): void {
  const result = compareTensors(actual, expected, options);
  if (!result.ok) throw new AssertionError({ message: formatCompare(result), operator: 'allclose' });
}
