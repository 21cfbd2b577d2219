/**
 * Cross-Image Attention's control surface, defined once: the per-call graph inputs its attention processor reads
 * and the outputs it writes (docs/method.md, "Cross-Image Attention").
 *
 *   cia_kv.<site>       int64 [1]          batch row whose keys / values the OUT row (row 0) attends to; -1 = no swap
 *   cia_contrast        float32 [1]        contrast strength of the out row's attention map (swapped sites only)
 *   cia_probe_pre.<site> / cia_probe_post.<site>
 *                       float32 [H, S, S]  output of probed sites only: the out row's map before / after the contrast
 *                                          ([0, 0, 0] unless the site swaps)
 *
 * Batch rows are the shared branches [out, style, struct] (methods/shared/branches.ts), without classifier-free
 * guidance (the reference runs its transfer with guidance_scale 1: docs/method.md, CIA quirk 1).
 */
import { InvalidParameterError } from '../../errors.js';
import type { Feeds } from '../../runtime/session.js';
import type { Tensor } from '../../tensor/tensor.js';

export const CIA_INPUT = {
  kv: (site: string): string => `cia_kv.${site}`,
  contrast: 'cia_contrast',
} as const;

export const CIA_OUTPUT = {
  probePre: (site: string): string => `cia_probe_pre.${site}`,
  probePost: (site: string): string => `cia_probe_post.${site}`,
} as const;

/** The row whose queries are kept while its keys and values come from another row (the reference's OUT_INDEX). */
export const OUT_ROW = 0;
/** `cia_kv` value of a site that does not swap. */
export const NO_SWAP = -1;

const int64 = (v: number): Tensor<'int64'> => ({ dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(v)) });
const float = (v: number): Tensor<'float32'> => ({ dtype: 'float32', dims: [1], data: Float32Array.of(v) });

/** Neutral values: no swap, contrast 1 (the processor is plain attention). */
export const NEUTRAL = {
  kv: int64(NO_SWAP),
  contrast: float(1),
} as const;

export interface CIAControls {
  /** Per swap site: the batch row whose K/V the out row takes, or NO_SWAP. Sites absent: NO_SWAP. */
  readonly kv: Readonly<Record<string, number>>;
  readonly contrast: number;
}

/** The graph feeds of one UNet call of `batch` rows; `swapSites` are the sites with a `cia_kv` input. */
export function ciaFeeds(controls: CIAControls, swapSites: readonly string[], batch: number): Feeds {
  if (!Number.isFinite(controls.contrast)) throw new InvalidParameterError(`cia contrast must be a finite number, got ${controls.contrast}`);
  const feeds: Record<string, Tensor> = { [CIA_INPUT.contrast]: float(controls.contrast) };
  for (const [site, row] of Object.entries(controls.kv)) {
    if (!swapSites.includes(site)) throw new InvalidParameterError(`cia: '${site}' is no swap site of this UNet (swap sites: ${swapSites.join(', ')})`);
    if (row !== NO_SWAP && !(Number.isInteger(row) && row > OUT_ROW && row < batch)) {
      throw new InvalidParameterError(`cia: K/V row ${row} of site ${site} must be -1 or a batch row in [1, ${batch})`);
    }
  }
  for (const site of swapSites) feeds[CIA_INPUT.kv(site)] = int64(controls.kv[site] ?? NO_SWAP);
  return feeds;
}

/** A float32 output of a UNet call, or an error naming it. */
export function floatOutput(outputs: Readonly<Record<string, Tensor>>, name: string): Tensor<'float32'> {
  const t = outputs[name];
  if (t === undefined || t.dtype !== 'float32') throw new InvalidParameterError(`UNet call: no float32 output ${name}`);
  return t as Tensor<'float32'>;
}
