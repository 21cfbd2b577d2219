/**
 * Eye-for-an-eye's control surface, defined once: the per-call graph inputs its attention processor reads, the
 * output it writes, the modes, and the batch rows ("slots") the rules read and write (docs/method.md §4).
 *
 *   e4e_mode          int64 [1]        0 off | 1 structure copy | 2 semantic matching | 3 V injection (values only)
 *   e4e_slots         int64 [6]        batch rows, in SLOT_ORDER
 *   e4e_mask_struct   float [Hm, Wm]   structure mask at any size (all ones = no mask)
 *   e4e_mask_app      float [Hm, Wm]   appearance mask
 *   e4e_forced.<site> int64 [N] | [0]  forced matches (token -> style token, < 0 keeps the token); [0] = argmax
 *   e4e_match.<site>  int64 [N]        output: the style token each out token took (-1 masked out, -2 no matching)
 *
 * The official code edits the two CFG halves by different rules (docs/method.md, quirks 1 and 4): matching rewrites
 * the COND out row from the COND style row, structure copy rewrites the UNCOND out row from the UNCOND struct row, and
 * V injection matches on the cond rows but rewrites the uncond out VALUES from the uncond style values. Without
 * guidance (a batch of 3, which the official code cannot run) every rule uses the one out / style / struct row.
 */
import { InvalidParameterError } from '../../errors.js';
import type { Feeds } from '../../runtime/session.js';
import type { Tensor } from '../../tensor/tensor.js';
import { batchRow, Branch } from '../shared/branches.js';

/** What the processor does during one UNet call. */
export const E4E_MODE = { off: 0, structCopy: 1, match: 2, vInjection: 3 } as const;
export type E4EMode = keyof typeof E4E_MODE;

/** What the method injects: the features (the paper's method) or only the values (the ablation). */
export const INJECTIONS = ['match', 'vInjection'] as const;
export type Injection = (typeof INJECTIONS)[number];

export const E4E_INPUT = {
  mode: 'e4e_mode',
  slots: 'e4e_slots',
  maskStruct: 'e4e_mask_struct',
  maskApp: 'e4e_mask_app',
  forced: (site: string): string => `e4e_forced.${site}`,
} as const;

export const E4E_OUTPUT = {
  match: (site: string): string => `e4e_match.${site}`,
} as const;

/** The rows of the batch each rule reads or writes, in the order of the `e4e_slots` input. */
export const SLOT_ORDER = ['matchOut', 'matchStyle', 'copyOut', 'copySource', 'vOut', 'vStyle'] as const;
export type SlotName = (typeof SLOT_ORDER)[number];
export type InjectionSlots = Readonly<Record<SlotName, number>>;

/** The slots of a batch of branches, with guidance (the official batch of 6) or without (batch of 3). */
export function injectionSlots(guided: boolean): InjectionSlots {
  const row = (branch: number, half: 'uncond' | 'cond'): number => batchRow(branch, half, guided);
  return Object.freeze({
    matchOut: row(Branch.Out, 'cond'),
    matchStyle: row(Branch.Style, 'cond'),
    copyOut: row(Branch.Out, 'uncond'),
    copySource: row(Branch.Struct, 'uncond'),
    vOut: row(Branch.Out, 'uncond'),
    vStyle: row(Branch.Style, 'uncond'),
  });
}

export interface E4EControls {
  readonly mode: E4EMode;
  readonly slots: InjectionSlots;
  /** Structure / appearance masks [H, W] at any size; absent = no mask (one alone: the other image is taken whole). */
  readonly maskStruct?: Tensor<'float32'> | undefined;
  readonly maskApp?: Tensor<'float32'> | undefined;
  /** Forced matches per site (token -> style token, < 0 keeps the token); sites absent use the argmax. */
  readonly forced?: Readonly<Record<string, BigInt64Array>> | undefined;
}

const int64 = (values: readonly number[]): Tensor<'int64'> => ({ dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
const ones = (dims: readonly number[]): Tensor<'float32'> => ({ dtype: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(1) });

/** The neutral value of each input: the processor does nothing (mode off, no masks, no forced matches). */
export const NEUTRAL = {
  mode: int64([E4E_MODE.off]),
  slots: int64(SLOT_ORDER.map(() => 0)),
  mask: ones([1, 1]),
  forced: int64([]),
} as const;

/** The graph feeds of one UNet call of `batch` rows for the processed `sites`. */
export function e4eFeeds(controls: E4EControls, sites: readonly string[], batch: number): Feeds {
  const slots = SLOT_ORDER.map((name) => controls.slots[name]);
  if (slots.some((s) => !Number.isInteger(s) || s < 0 || s >= batch)) {
    throw new InvalidParameterError(`e4e slots ${JSON.stringify(controls.slots)} must be batch rows in [0, ${batch})`);
  }
  const given = controls.maskStruct ?? controls.maskApp;
  const feeds: Record<string, Tensor> = {
    [E4E_INPUT.mode]: int64([E4E_MODE[controls.mode]]),
    [E4E_INPUT.slots]: int64(slots),
    [E4E_INPUT.maskStruct]: controls.maskStruct ?? (given === undefined ? NEUTRAL.mask : ones(given.dims)),
    [E4E_INPUT.maskApp]: controls.maskApp ?? (given === undefined ? NEUTRAL.mask : ones(given.dims)),
  };
  for (const site of sites) {
    const forced = controls.forced?.[site];
    feeds[E4E_INPUT.forced(site)] = forced === undefined ? NEUTRAL.forced : { dtype: 'int64', dims: [forced.length], data: forced };
  }
  return feeds;
}

/** The match indices per site from a UNet call's outputs. */
export function matchesOf(outputs: Readonly<Record<string, Tensor>>, sites: readonly string[]): Record<string, BigInt64Array> {
  const matches: Record<string, BigInt64Array> = {};
  for (const site of sites) {
    const t = outputs[E4E_OUTPUT.match(site)];
    if (t === undefined || t.dtype !== 'int64') throw new InvalidParameterError(`UNet call: no int64 output ${E4E_OUTPUT.match(site)}`);
    matches[site] = t.data as BigInt64Array;
  }
  return matches;
}

/**
 * The sites the method's processor acts at: the processed modules that read Eye-for-an-eye's inputs (a UNet built
 * with self-segmentation's map recording has further processed modules that only record).
 */
export function e4eSitesOf(unet: {
  readonly info: { readonly processed: readonly string[]; readonly neutralFeeds: Readonly<Record<string, unknown>> };
}): string[] {
  return unet.info.processed.filter((site) => E4E_INPUT.forced(site) in unet.info.neutralFeeds);
}
