/**
 * Named batch slots. The transfer denoises three latents [out, style, struct]; with classifier-free guidance the UNet
 * sees them twice: [uncond out, uncond style, uncond struct, cond out, cond style, cond struct].
 *
 * The official code edits the two CFG halves by different rules (golden README quirks 1, 4): matching rewrites the
 * COND out row from the COND style row, structure copy rewrites the UNCOND out row from the UNCOND struct row, and
 * V injection matches on the cond rows but rewrites the uncond out VALUES from the uncond style values.
 * Without guidance (batch of 3, which the official code cannot run) every rule uses the one out/style/struct.
 */
export const Slot = { Out: 0, Style: 1, Struct: 2 } as const;
export const BRANCHES = 3;

/** Rows of the UNet batch for the feature-injection rules, in the order of the `e4e_slots` graph input. */
export interface InjectionSlots {
  matchOut: number;
  matchStyle: number;
  copyOut: number;
  copySource: number;
  vOut: number;
  vStyle: number;
}

const uncond = (slot: number): number => slot;
const cond = (slot: number): number => BRANCHES + slot;

/** The official layout with guidance (batch of 6). */
export const OFFICIAL_CFG_SLOTS: Readonly<InjectionSlots> = Object.freeze({
  matchOut: cond(Slot.Out),
  matchStyle: cond(Slot.Style),
  copyOut: uncond(Slot.Out),
  copySource: uncond(Slot.Struct),
  vOut: uncond(Slot.Out),
  vStyle: uncond(Slot.Style),
});

/** The consistent layout without guidance (batch of 3). */
export const SINGLE_BATCH_SLOTS: Readonly<InjectionSlots> = Object.freeze({
  matchOut: Slot.Out,
  matchStyle: Slot.Style,
  copyOut: Slot.Out,
  copySource: Slot.Struct,
  vOut: Slot.Out,
  vStyle: Slot.Style,
});

export function slotsInput(slots: Readonly<InjectionSlots>): number[] {
  return [slots.matchOut, slots.matchStyle, slots.copyOut, slots.copySource, slots.vOut, slots.vStyle];
}
