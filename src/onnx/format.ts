/**
 * The ONNX format versions we emit, declared once.
 *
 * Opset 17: LayerNormalization is a standard op there; the Reduce* ops still take `axes` as an attribute
 * (simpler graphs); every op we need has well-optimised CPU, CUDA and WebGPU kernels in onnxruntime 1.30.
 * GroupNormalization (opset 18/21) is avoided on purpose: its opset-18 definition was wrong and was replaced in 21,
 * so we express group norm as InstanceNormalization over [B, G, -1], the form every EP fuses.
 * com.microsoft (ORT contrib ops, version 1) is imported for MultiHeadAttention, which has a memory-efficient
 * (flash) CPU kernel and CUDA/WebGPU kernels.
 */
export const IR_VERSION = 8;
export const ONNX_OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';
export const MS_OPSET = 1;
export const PRODUCER_NAME = 'eye4eye';

/**
 * Bump when a change to any graph builder changes the graphs it emits: the on-disk graph cache is keyed by it.
 */
export const BUILDER_VERSION = '1';

export const OPSET_IMPORTS: readonly { domain: string; version: number }[] = [
  { domain: '', version: ONNX_OPSET },
  { domain: MS_DOMAIN, version: MS_OPSET },
];
