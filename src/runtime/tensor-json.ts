/** Small tensors as JSON (int64 values as decimal strings), e.g. the neutral feeds kept in a graph cache entry. */
import { InvalidParameterError } from '../errors.js';
import { allocate, numel, type DType, type Tensor } from '../tensor/tensor.js';

export interface TensorJson {
  dtype: DType;
  dims: number[];
  data: (number | string)[];
}

export function tensorToJson(t: Tensor): TensorJson {
  const data = t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, String) : Array.from(t.data as ArrayLike<number>);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

export function tensorFromJson(json: TensorJson): Tensor {
  if (!Array.isArray(json.dims) || !Array.isArray(json.data) || numel(json.dims) !== json.data.length) {
    throw new InvalidParameterError(`tensor JSON with dims ${JSON.stringify(json.dims)} holds ${Array.isArray(json.data) ? json.data.length : 'no'} values`);
  }
  const data = allocate(json.dtype, json.data.length);
  if (data instanceof BigInt64Array)
    json.data.forEach((v, i) => {
      data[i] = BigInt(v);
    });
  else
    json.data.forEach((v, i) => {
      (data as Float32Array)[i] = Number(v);
    });
  return { dtype: json.dtype, dims: [...json.dims], data };
}
