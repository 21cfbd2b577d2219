/**
 * A plain CPU tensor: dtype, dims and a typed array in row-major order. No op zoo; the heavy math lives in ONNX.
 */
import { InvalidParameterError } from '../errors.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool' | 'float64' | 'int8' | 'int16' | 'uint16';

export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  uint16: Uint16Array;
}

export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: TypedArrayOf[D];
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
  float64: 8,
  int8: 1,
  int16: 2,
  uint16: 2,
};

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function formatDims(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}

export function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function allocate<D extends DType>(dtype: D, n: number): TypedArrayOf[D] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n) as TypedArrayOf[D];
    case 'float16':
    case 'bfloat16':
    case 'uint16':
      return new Uint16Array(n) as TypedArrayOf[D];
    case 'int64':
      return new BigInt64Array(n) as TypedArrayOf[D];
    case 'int32':
      return new Int32Array(n) as TypedArrayOf[D];
    case 'uint8':
    case 'bool':
      return new Uint8Array(n) as TypedArrayOf[D];
    case 'float64':
      return new Float64Array(n) as TypedArrayOf[D];
    case 'int8':
      return new Int8Array(n) as TypedArrayOf[D];
    case 'int16':
      return new Int16Array(n) as TypedArrayOf[D];
  }
  throw new InvalidParameterError(`unknown dtype ${String(dtype)}`);
}

/** Make a tensor, checking that the data length matches the dims. */
export function tensor<D extends DType>(dtype: D, dims: readonly number[], data?: TypedArrayOf[D]): Tensor<D> {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new InvalidParameterError(`tensor dims must be non-negative integers, got ${formatDims(dims)}`);
  }
  const n = numel(dims);
  const values = data ?? allocate(dtype, n);
  if (values.length !== n) {
    throw new InvalidParameterError(`tensor of dims ${formatDims(dims)} needs ${n} ${dtype} elements, got ${values.length}`);
  }
  return { dtype, dims: [...dims], data: values };
}

export function float32(dims: readonly number[], data?: Float32Array | readonly number[]): Tensor<'float32'> {
  return tensor('float32', dims, data === undefined ? undefined : Float32Array.from(data));
}

/** A view of slice `index` along the first axis (shares memory for typed arrays). */
export function sliceFirst<D extends DType>(t: Tensor<D>, index: number): Tensor<D> {
  const [first, ...rest] = t.dims;
  if (first === undefined || index < 0 || index >= first) {
    throw new InvalidParameterError(`index ${index} out of range for first axis of ${formatDims(t.dims)}`);
  }
  const size = numel(rest);
  const data = t.data.subarray(index * size, (index + 1) * size) as TypedArrayOf[D];
  return { dtype: t.dtype, dims: rest, data };
}

/** Stack same-shaped tensors along a new first axis (copies). */
export function stack<D extends DType>(parts: readonly Tensor<D>[]): Tensor<D> {
  const first = parts[0];
  if (first === undefined) throw new InvalidParameterError('stack needs at least one tensor');
  const size = numel(first.dims);
  const out = allocate(first.dtype, size * parts.length);
  parts.forEach((p, i) => {
    if (!sameDims(p.dims, first.dims)) {
      throw new InvalidParameterError(`stack: dims ${formatDims(p.dims)} differ from ${formatDims(first.dims)}`);
    }
    (out as Float32Array).set(p.data as Float32Array, i * size);
  });
  return { dtype: first.dtype, dims: [parts.length, ...first.dims], data: out };
}

/** Equal-sized rows (latents, embeddings) one after the other in one array: the data of a batch. */
export function concatRows(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

export function reshape<D extends DType>(t: Tensor<D>, dims: readonly number[]): Tensor<D> {
  if (numel(dims) !== numel(t.dims)) throw new InvalidParameterError(`cannot reshape ${formatDims(t.dims)} to ${formatDims(dims)}`);
  return { dtype: t.dtype, dims: [...dims], data: t.data };
}
