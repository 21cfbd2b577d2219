/**
 * torch.nn.Linear on [..., in] -> [..., out]: MatMul with the transposed verbatim weight (+ bias).
 * onnxruntime folds the Transpose of the constant weight once, at session creation.
 */
import { add, matMul, transpose } from '../../onnx/ops.js';
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';

export function buildLinear(
  scope: WeightScope,
  x: Value,
  inFeatures: number,
  outFeatures: number,
  options: { bias?: boolean; dtype?: 'float32' | 'float16' } = {},
): Value {
  const w = scope.weight('weight', [outFeatures, inFeatures], options.dtype); // [out, in]
  const y = matMul(scope, x, transpose(scope, w, [1, 0], { name: 'weight/Transpose' })); // [..., out]
  if (options.bias === false) return y;
  return add(scope, y, scope.weight('bias', [outFeatures], options.dtype)); // [..., out]
}
