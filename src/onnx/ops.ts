/**
 * One typed helper per ONNX op we use (opset 17 semantics, see format.ts). Each takes the naming scope first;
 * the node is named `${scope.path}/${OpType}` unless a name is given. No model knowledge lives here.
 */
import { MS_DOMAIN } from './format.js';
import { float, Scope, type GraphBuilder, type Value } from './graph-builder.js';
import type { OnnxElemType } from './proto.js';
import { OnnxDataType } from './proto.js';

type Named = { name?: string };

// ---- constants ----------------------------------------------------------------------------------------------

export function constFloat(g: GraphBuilder, values: number | readonly number[], dims?: readonly number[]): Value {
  const data = Float32Array.from(typeof values === 'number' ? [values] : values);
  return g.constant({ dtype: 'float32', dims: dims ?? (typeof values === 'number' ? [] : [data.length]), data });
}

export function constInt64(g: GraphBuilder, values: number | readonly number[], dims?: readonly number[]): Value {
  const list = typeof values === 'number' ? [values] : values;
  const data = BigInt64Array.from(list.map((v) => BigInt(v)));
  return g.constant({ dtype: 'int64', dims: dims ?? (typeof values === 'number' ? [] : [data.length]), data });
}

/** A float constant in the graph's activation type (a folded Cast of the float32 constant under fp16). */
export function actConst(s: Scope, values: number | readonly number[], dims?: readonly number[]): Value {
  const c = constFloat(s.g, values, dims);
  return s.g.target.precision === 'fp16' ? cast(new Scope(s.g, `/constants/float16`), c, 'float16') : c;
}

export function constTensor(g: GraphBuilder, data: Float32Array, dims: readonly number[]): Value {
  return g.constant({ dtype: 'float32', dims, data });
}

// ---- elementwise ---------------------------------------------------------------------------------------------

const binary =
  (op: string) =>
  (s: Scope, a: Value, b: Value, o: Named = {}): Value =>
    s.op(op, [a, b], {}, o);
const unary =
  (op: string) =>
  (s: Scope, x: Value, o: Named = {}): Value =>
    s.op(op, [x], {}, o);

export const add = binary('Add');
export const sub = binary('Sub');
export const mul = binary('Mul');
export const div = binary('Div');
export const equal = binary('Equal');
export const greater = binary('Greater');
export const less = binary('Less');
export const and = binary('And');
export const max = binary('Max');
export const min = binary('Min');
export const sqrt = unary('Sqrt');
export const neg = unary('Neg');
export const exp = unary('Exp');
export const erf = unary('Erf');
export const sigmoid = unary('Sigmoid');
export const cos = unary('Cos');
export const sin = unary('Sin');
export const not = unary('Not');
export const abs = unary('Abs');
export const relu = unary('Relu');
export const identity = unary('Identity');
export const shape = unary('Shape');

export function where(s: Scope, condition: Value, a: Value, b: Value, o: Named = {}): Value {
  return s.op('Where', [condition, a, b], {}, o);
}

export function cast(s: Scope, x: Value, to: OnnxElemType, o: Named = {}): Value {
  return s.op('Cast', [x], { to: OnnxDataType[to] }, o);
}

/** SiLU: x * sigmoid(x). */
export function silu(s: Scope, x: Value): Value {
  return mul(s, x, sigmoid(s, x, { name: 'silu/Sigmoid' }), { name: 'silu/Mul' });
}

/** GELU, erf form (torch's default); onnxruntime fuses this pattern into one Gelu kernel. */
export function gelu(s: Scope, x: Value): Value {
  const scaled = div(s, x, actConst(s, Math.SQRT2), { name: 'gelu/Div' });
  const e = add(s, erf(s, scaled, { name: 'gelu/Erf' }), actConst(s, 1), { name: 'gelu/Add' });
  return mul(s, mul(s, x, e, { name: 'gelu/Mul' }), actConst(s, 0.5), { name: 'gelu/Mul_half' });
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(s: Scope, x: Value): Value {
  const scaled = mul(s, x, actConst(s, 1.702), { name: 'quick_gelu/Mul_1.702' });
  return mul(s, x, sigmoid(s, scaled, { name: 'quick_gelu/Sigmoid' }), { name: 'quick_gelu/Mul' });
}

// ---- shape ---------------------------------------------------------------------------------------------------

export function reshape(s: Scope, x: Value, dims: readonly number[] | Value, o: Named = {}): Value {
  const target = Array.isArray(dims) ? constInt64(s.g, dims as readonly number[]) : (dims as Value);
  return s.op('Reshape', [x, target], {}, o);
}

export function transpose(s: Scope, x: Value, perm: readonly number[], o: Named = {}): Value {
  return s.op('Transpose', [x], { perm }, o);
}

export function concat(s: Scope, xs: readonly Value[], axis: number, o: Named = {}): Value {
  return s.op('Concat', xs, { axis }, o);
}

export function unsqueeze(s: Scope, x: Value, axes: readonly number[], o: Named = {}): Value {
  return s.op('Unsqueeze', [x, constInt64(s.g, axes)], {}, o);
}

export function squeeze(s: Scope, x: Value, axes: readonly number[], o: Named = {}): Value {
  return s.op('Squeeze', [x, constInt64(s.g, axes)], {}, o);
}

export function slice(
  s: Scope,
  x: Value,
  spec: { starts: readonly number[] | Value; ends: readonly number[] | Value; axes: readonly number[]; steps?: readonly number[] },
  o: Named = {},
): Value {
  const g = s.g;
  const asValue = (v: readonly number[] | Value): Value => (Array.isArray(v) ? constInt64(g, v as readonly number[]) : (v as Value));
  const inputs = [asValue(spec.starts), asValue(spec.ends), constInt64(g, spec.axes)];
  if (spec.steps !== undefined) inputs.push(constInt64(g, spec.steps));
  return s.op('Slice', [x, ...inputs], {}, o);
}

/** Split into equal parts (or given sizes) along an axis. */
export function split(s: Scope, x: Value, axis: number, sizes: readonly number[], o: Named = {}): Value[] {
  return s.nodes('Split', [x, constInt64(s.g, sizes)], { axis }, { ...o, outputs: sizes.length });
}

export function gather(s: Scope, x: Value, indices: Value, axis: number, o: Named = {}): Value {
  return s.op('Gather', [x, indices], { axis }, o);
}

export function expand(s: Scope, x: Value, dims: Value, o: Named = {}): Value {
  return s.op('Expand', [x, dims], {}, o);
}

// ---- reductions ----------------------------------------------------------------------------------------------

export function reduceMean(s: Scope, x: Value, axes: readonly number[], keepdims: boolean, o: Named = {}): Value {
  return s.op('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 }, o);
}

/** ReduceSum takes its axes as an input since opset 13. */
export function reduceSum(s: Scope, x: Value, axes: readonly number[], keepdims: boolean, o: Named = {}): Value {
  return s.op('ReduceSum', [x, constInt64(s.g, axes)], { keepdims: keepdims ? 1 : 0 }, o);
}

export function reduceMax(s: Scope, x: Value, axes: readonly number[], keepdims: boolean, o: Named = {}): Value {
  return s.op('ReduceMax', [x], { axes, keepdims: keepdims ? 1 : 0 }, o);
}

/** ArgMax; ties resolve to the first index (select_last_index = 0), like numpy/torch argmax. */
export function argMax(s: Scope, x: Value, axis: number, keepdims: boolean, o: Named = {}): Value {
  return s.op('ArgMax', [x], { axis, keepdims: keepdims ? 1 : 0, select_last_index: 0 }, o);
}

export function softmax(s: Scope, x: Value, axis: number, o: Named = {}): Value {
  return s.op('Softmax', [x], { axis }, o);
}

// ---- linear algebra ------------------------------------------------------------------------------------------

export function matMul(s: Scope, a: Value, b: Value, o: Named = {}): Value {
  return s.op('MatMul', [a, b], {}, o);
}

/** Gemm on 2-D inputs: alpha * A' B' + C, with optional transposes. */
export function gemm(s: Scope, a: Value, b: Value, c: Value | null, options: { transA?: boolean; transB?: boolean; alpha?: number } & Named = {}): Value {
  const attrs: Record<string, ReturnType<typeof float> | number> = {};
  if (options.transA === true) attrs['transA'] = 1;
  if (options.transB === true) attrs['transB'] = 1;
  if (options.alpha !== undefined) attrs['alpha'] = float(options.alpha);
  const named: Named = options.name === undefined ? {} : { name: options.name };
  return s.op('Gemm', c === null ? [a, b] : [a, b, c], attrs, named);
}

export interface ConvOptions {
  pads?: readonly number[];
  strides?: readonly number[];
  dilations?: readonly number[];
  group?: number;
  name?: string;
}

function convOp(op: 'Conv' | 'ConvTranspose', s: Scope, x: Value, w: Value, b: Value | null, options: ConvOptions): Value {
  const attrs: Record<string, readonly number[] | number> = {};
  if (options.pads !== undefined) attrs['pads'] = options.pads;
  if (options.strides !== undefined) attrs['strides'] = options.strides;
  if (options.dilations !== undefined) attrs['dilations'] = options.dilations;
  if (options.group !== undefined) attrs['group'] = options.group;
  const named: Named = options.name === undefined ? {} : { name: options.name };
  return s.op(op, b === null ? [x, w] : [x, w, b], attrs, named);
}

export function conv(s: Scope, x: Value, w: Value, b: Value | null, options: ConvOptions = {}): Value {
  return convOp('Conv', s, x, w, b, options);
}

/** ConvTranspose (weight [in, out / group, kh, kw], PyTorch's layout). */
export function convTranspose(s: Scope, x: Value, w: Value, b: Value | null, options: ConvOptions = {}): Value {
  return convOp('ConvTranspose', s, x, w, b, options);
}

// ---- normalisation -------------------------------------------------------------------------------------------

export function layerNorm(s: Scope, x: Value, scale: Value, bias: Value, epsilon: number, o: Named = {}): Value {
  if (s.g.target.device === 'webgpu') return add(s, mul(s, twoPassNormalize(s, x, epsilon), scale, { name: 'Mul_scale' }), bias, { name: 'Add_bias' });
  return s.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(epsilon) }, o);
}

/**
 * (x - mean) / sqrt(var + eps) over the last axis, variance from the centred values (two passes). onnxruntime 1.30's
 * WebGPU InstanceNormalization and LayerNormalization are 1e-5 (relative) off the CPU once the mean is large against
 * the spread (a one-pass variance's cancellation, by the look of it), so WebGPU graphs normalise this way.
 */
function twoPassNormalize(s: Scope, x: Value, epsilon: number): Value {
  const centred = sub(s, x, reduceMean(s, x, [-1], true, { name: 'ReduceMean_mean' }), { name: 'Sub_mean' });
  const variance = reduceMean(s, mul(s, centred, centred, { name: 'Mul_square' }), [-1], true, { name: 'ReduceMean_var' });
  return div(s, centred, sqrt(s, add(s, variance, constFloat(s.g, epsilon), { name: 'Add_eps' }), { name: 'Sqrt_std' }), { name: 'Div_std' });
}

export function instanceNorm(s: Scope, x: Value, scale: Value, bias: Value, epsilon: number, o: Named = {}): Value {
  return s.op('InstanceNormalization', [x, scale, bias], { epsilon: float(epsilon) }, o);
}

/**
 * torch.nn.GroupNorm on [B, C, ...]: normalise over [B, G, C/G * spatial] with InstanceNormalization
 * (unit scale, zero bias), then the per-channel affine.
 *
 *   x [B,C,H,W] -> Reshape [B,G,-1] -> InstanceNormalization -> Reshape as x -> * gamma[C,1,1] + beta[C,1,1]
 */
export function groupNorm(s: Scope, x: Value, gamma: Value, beta: Value, options: { groups: number; epsilon: number; spatialRank: number }): Value {
  const g = s.g;
  const grouped = reshape(s, x, [0, options.groups, -1], { name: 'Reshape_groups' }); // [B, G, C/G*HW]
  const unit = (v: number): Value => constFloat(g, new Array<number>(options.groups).fill(v));
  const normed = g.target.device === 'webgpu' ? twoPassNormalize(s, grouped, options.epsilon) : instanceNorm(s, grouped, unit(1), unit(0), options.epsilon); // [B, G, C/G*HW]
  const restored = s.op('Reshape', [normed, shape(s, x)], {}, { name: 'Reshape_back' }); // [B, C, H, W]
  const trailing = new Array<number>(options.spatialRank).fill(1);
  const gammaB = reshape(s, gamma, [-1, ...trailing], { name: 'Reshape_gamma' }); // [C, 1, 1]
  const betaB = reshape(s, beta, [-1, ...trailing], { name: 'Reshape_beta' }); // [C, 1, 1]
  return add(s, mul(s, restored, gammaB, { name: 'Mul_gamma' }), betaB, { name: 'Add_beta' });
}

// ---- resampling ----------------------------------------------------------------------------------------------

/** Nearest-neighbour upsampling by an integer factor on the last two axes (torch's F.interpolate 'nearest'). */
export function upsampleNearest(s: Scope, x: Value, factor: number, o: Named = {}): Value {
  const scales = constFloat(s.g, [1, 1, factor, factor]);
  return s.op('Resize', [x, null, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, o);
}

/** Bilinear resize to explicit sizes, align_corners = false, no antialias (torch F.interpolate 'bilinear'). */
export function resizeBilinear(s: Scope, x: Value, sizes: Value, o: Named = {}): Value {
  return s.op('Resize', [x, null, null, sizes], { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, o);
}

// ---- control flow & attention --------------------------------------------------------------------------------

/** If: both branches are subgraphs of `s.g` producing `outputs` values. */
export function ifElse(s: Scope, condition: Value, thenBranch: GraphBuilder, elseBranch: GraphBuilder, outputs: number, o: Named = {}): Value[] {
  return s.nodes('If', [condition], { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } }, { ...o, outputs });
}

/**
 * com.microsoft.MultiHeadAttention: q [B, S, H*D], k/v [B, T, H*D] -> [B, S, H*D], softmax(q k^T / sqrt(D)) v.
 * onnxruntime runs it with a memory-efficient (flash) kernel on CPU where it can, and on CUDA/WebGPU.
 */
export function multiHeadAttention(s: Scope, q: Value, k: Value, v: Value, numHeads: number, o: Named = {}): Value {
  return s.op('MultiHeadAttention', [q, k, v], { num_heads: numHeads }, { ...o, domain: MS_DOMAIN });
}
