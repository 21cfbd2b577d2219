/**
 * What a graph is built for: the execution provider and the precision. Builders read it from their GraphBuilder
 * (immutable, set when the root graph is created) where an execution provider needs another formulation of the same
 * arithmetic; it is part of every graph-cache key.
 */

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export const PRECISIONS = ['fp32', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface BuildTarget {
  readonly device: ExecutionProvider;
  readonly precision: Precision;
  /**
   * How softmax(q k^T / sqrt(d)) v runs: 'fused' in com.microsoft.MultiHeadAttention (memory-efficient on CPU and
   * CUDA), 'explicit' as MatMul / Softmax / MatMul in query chunks whose scores stay within `scoresBudgetBytes`
   * (onnxruntime 1.30's WebGPU MultiHeadAttention gives wrong results beyond 16 tokens, see
   * test/runtime/webgpu-mha-repro.test.ts, and materialises all scores at once).
   */
  readonly attention: 'fused' | 'explicit';
  /** Size the [B, heads, queries, keys] scores of one chunk may reach at the expected batch and token counts. */
  readonly scoresBudgetBytes: number;
}

/** 128 MiB: the WebGPU default maxStorageBufferBindingSize, so one chunk's scores fit one binding. */
export const DEFAULT_SCORES_BUDGET_BYTES = 128 * 2 ** 20;

/** The element type of a graph's activations and weights under its precision (float32 islands stay float32). */
export function activationType(target: BuildTarget): 'float32' | 'float16' {
  return target.precision === 'fp16' ? 'float16' : 'float32';
}

export function buildTarget(device: ExecutionProvider = 'cpu', precision: Precision = 'fp32'): BuildTarget {
  return Object.freeze({ device, precision, attention: device === 'webgpu' ? 'explicit' : 'fused', scoresBudgetBytes: DEFAULT_SCORES_BUDGET_BYTES });
}

export const DEFAULT_TARGET: BuildTarget = buildTarget();
