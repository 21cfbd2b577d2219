/** The methods the pipeline can run, by the name users select them with. */
import { crossImageAttention } from './cross-image-attention/index.js';
import { eyeForAnEye } from './eye-for-an-eye/index.js';

export const METHODS = {
  'eye-for-an-eye': eyeForAnEye,
  cia: crossImageAttention,
} as const;

export type MethodName = keyof typeof METHODS;
export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];
