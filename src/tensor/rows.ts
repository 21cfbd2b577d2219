/** Rows of a batch: stacking equal-sized rows into one tensor and taking them apart again. */
import { InvalidParameterError } from '../errors.js';
import { formatDims, numel, type Tensor } from './tensor.js';

/** The rows one after the other in one array. */
export function concatRows(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

/** Rows of `dims` each, stacked into [rows, ...dims]. */
export function stackRows(rows: readonly Float32Array[], dims: readonly number[]): Tensor<'float32'> {
  const size = numel(dims);
  const bad = rows.findIndex((r) => r.length !== size);
  if (bad >= 0) throw new InvalidParameterError(`row ${bad} has ${rows[bad]!.length} values; rows of ${formatDims(dims)} have ${size}`);
  return { dtype: 'float32', dims: [rows.length, ...dims], data: concatRows(rows) };
}

/** The rows of a [N, ...] tensor as copies. */
export function unstackRows(t: Tensor<'float32'>): Float32Array[] {
  const n = t.dims[0] ?? 0;
  const size = n === 0 ? 0 : t.data.length / n;
  return Array.from({ length: n }, (_, i) => t.data.slice(i * size, (i + 1) * size));
}

/** Row `i` of a [N, ...] tensor as a [1, ...] tensor (a copy). */
export function rowTensor(t: Tensor<'float32'>, i: number): Tensor<'float32'> {
  const [, ...rest] = t.dims;
  const size = numel(rest);
  return { dtype: 'float32', dims: [1, ...rest], data: t.data.slice(i * size, (i + 1) * size) };
}
