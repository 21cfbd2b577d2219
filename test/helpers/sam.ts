/** SAM-HQ test models derived from the tiny golden one. */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openTensorSource, writeSafetensors } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { samTinyModelDir } from './paths.js';

/**
 * A copy of the tiny SAM-HQ whose masks are always empty: with hq_token_only the mask is the HQ token's hypernetwork
 * output . features, and a zero hypernetwork output layer makes every logit 0 (no pixel above the threshold).
 */
export function writeEmptyMaskSamModel(dir: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(samTinyModelDir, 'config.json'), join(dir, 'config.json'));
  const src = openTensorSource(join(samTinyModelDir, 'model.safetensors'));
  const tensors: Record<string, Tensor> = {};
  for (const name of src.names()) {
    const t = src.read(name);
    tensors[name] = name.startsWith('mask_decoder.hq_mask_mlp.proj_out.') ? { ...t, data: new Float32Array(t.data.length) } : t;
  }
  src.close();
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}
