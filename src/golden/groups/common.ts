/** Helpers the group runners share: run_config values, stacking rows, the hook sites, input-mapping notes. */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { decodeLatent, defaultSites, type GoldenEngine, type StepRange } from '../engine.js';
import type { ResolvedInput } from '../inputs.js';
import type { GoldenContext } from '../runner.js';

export function runConfigString(ctx: GoldenContext, key: string): string {
  const v = ctx.golden.runConfig[key];
  if (typeof v !== 'string') throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be a string`);
  return v;
}

export function runConfigNumber(ctx: GoldenContext, key: string): number {
  const v = ctx.golden.runConfig[key];
  if (typeof v !== 'number') throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be a number`);
  return v;
}

export function runConfigRange(ctx: GoldenContext, key: string): StepRange {
  const r = ctx.golden.runConfig[key];
  if (!Array.isArray(r) || r.length !== 2 || !r.every((v) => typeof v === 'number')) {
    throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be [start, end]`);
  }
  return { start: r[0] as number, end: r[1] as number };
}

/** A number parameter of a tensor's io.json entry, else `fallback()`. */
export function paramNumber(ctx: GoldenContext, name: string, key: string, fallback: () => number): number {
  const v = ctx.golden.tensors[name]?.params?.[key];
  return typeof v === 'number' ? v : fallback();
}

/** Rows of equal length stacked into [rows, ...dims]. */
export function stacked(list: readonly Float32Array[], dims: readonly number[]): Tensor<'float32'> {
  const data = new Float32Array(list.reduce((n, l) => n + l.length, 0));
  let o = 0;
  for (const l of list) {
    data.set(l, o);
    o += l.length;
  }
  return { dtype: 'float32', dims: [list.length, ...dims], data };
}

/**
 * The hooked attn1 sites: the layers the case records match indices for (the hook points are configurable, and the
 * case names the ones its reference run used), else our default (the two highest-resolution attention up blocks).
 */
export async function hookedSites(ctx: GoldenContext): Promise<string[]> {
  const sites = new Set<string>();
  for (const name of Object.keys(ctx.golden.tensors)) {
    const m = /^(?:unet_e4e[a-z_]*|transfer)\.match_index\.(.+)$/.exec(name);
    if (m !== null) sites.add(m[1]!);
  }
  return sites.size > 0 ? [...sites] : await defaultSites(ctx.model());
}

/** One report line saying where the inputs of an output came from. */
export function noteInputs(ctx: GoldenContext, anchor: string, inputs: Record<string, ResolvedInput<unknown> | undefined>): void {
  const parts = Object.entries(inputs).flatMap(([what, r]) =>
    r === undefined ? [] : [`${what} <- ${r.name}${r.source === 'top-level input' ? '' : ` (${r.source})`}`],
  );
  ctx.note(`inputs of ${anchor}: ${parts.join(', ')}`);
}

/**
 * Computes each output on its own: one that cannot be computed (an input that does not map, say) is reported on its
 * own line through ctx.fail, and the others are still computed, compared and saved.
 */
export async function eachOutput(ctx: GoldenContext, names: readonly string[], compute: (name: string) => Promise<Tensor>): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  for (const name of names) {
    try {
      out[name] = await compute(name);
    } catch (error) {
      ctx.fail(name, error);
    }
  }
  return out;
}

/** Decoded [out, style, struct] -> NHWC float in [0, 1] and the uint8 image (round(255 x)), as diffusers' postprocess. */
export async function decodedImages(engine: GoldenEngine, latents: Tensor<'float32'>): Promise<{ float: Tensor<'float32'>; uint8: Tensor<'uint8'> }> {
  const decoded = await decodeLatent(engine, latents);
  const [b, ch, hh, ww] = decoded.dims as [number, number, number, number];
  const f = new Float32Array(b * hh * ww * ch);
  const u8 = new Uint8Array(f.length);
  for (let n = 0; n < b; n++)
    for (let k = 0; k < ch; k++)
      for (let y = 0; y < hh; y++)
        for (let x = 0; x < ww; x++) {
          const v = Math.fround(Math.fround(decoded.data[((n * ch + k) * hh + y) * ww + x]! / 2) + 0.5);
          const clamped = Math.min(1, Math.max(0, v));
          const at = ((n * hh + y) * ww + x) * ch + k;
          f[at] = clamped;
          u8[at] = Math.round(Math.fround(clamped * 255));
        }
  return { float: { dtype: 'float32', dims: [b, hh, ww, ch], data: f }, uint8: { dtype: 'uint8', dims: [b, hh, ww, ch], data: u8 } };
}
