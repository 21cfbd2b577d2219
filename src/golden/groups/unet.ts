/**
 * Groups `unet_plain`, `unet_freeu` (one UNet call, stock attention) and `unet_e4e*` (one call of the method's UNet
 * in each mode: baseline, match, structcopy, match_masked, vswap), plus their namespaced copies (`nonsquare.`).
 */
import { GoldenError } from '../../errors.js';
import { e4eFeeds, injectionSlots, matchesOf, type E4EControls } from '../../methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../../methods/eye-for-an-eye/index.js';
import { injectionMode, type StepRange } from '../../methods/eye-for-an-eye/schedule.js';
import type { UNetRunner } from '../../runtime/unet-runner.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GoldenContext } from '../runner.js';

export function floatTensor(ctx: GoldenContext, name: string): Tensor<'float32'> {
  if (!ctx.golden.has(name)) throw new GoldenError(`${ctx.golden.dir}: input tensor '${name}' is missing`);
  const t = ctx.golden.get(name);
  if (t.dtype !== 'float32') throw new GoldenError(`${name}: expected float32, got ${t.dtype}`);
  return t as Tensor<'float32'>;
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

export function scalarInt(ctx: GoldenContext, name: string): number {
  const t = ctx.golden.get(name);
  const v = t.data[0];
  if (v === undefined) throw new GoldenError(`${name}: empty tensor`);
  return Number(v);
}

/** A uint8/bool/float mask [H, W] as float32 0/1 values. */
export function maskTensor(ctx: GoldenContext, name: string): Tensor<'float32'> {
  const t = ctx.golden.get(name);
  return { dtype: 'float32', dims: t.dims, data: Float32Array.from(t.data as ArrayLike<number>, (v) => (Number(v) !== 0 ? 1 : 0)) };
}

export function featRange(ctx: GoldenContext): StepRange {
  const r = ctx.golden.runConfig['feat_range'];
  if (!Array.isArray(r) || r.length !== 2) throw new GoldenError(`${ctx.golden.dir}: io.json run_config.feat_range must be [start, end]`);
  return { start: Number(r[0]), end: Number(r[1]) };
}

function modelStep(ctx: GoldenContext, group: string, outName: string): number {
  const fromParams = ctx.golden.tensors[outName]?.params?.['model_step'];
  if (typeof fromParams === 'number') return fromParams;
  const steps = ctx.golden.meta['unet_e4e_steps'];
  const key = group.replace(/^unet_e4e_?/, '') || 'baseline';
  const fromSteps = typeof steps === 'object' && steps !== null ? (steps as Record<string, unknown>)[key] : undefined;
  if (typeof fromSteps === 'number') return fromSteps;
  throw new GoldenError(`${outName}: io.json gives no model_step for group ${group}`);
}

/**
 * The hooked attn1 sites: the layers the case records match indices for (the hook points are configurable, and the
 * case names the ones its reference run used), else our default (the two highest-resolution attention up blocks).
 */
export function hookedSites(ctx: GoldenContext): string[] | undefined {
  const sites = new Set<string>();
  for (const name of Object.keys(ctx.golden.tensors)) {
    const m = /^(?:unet_e4e[a-z_]*|transfer)\.match_index\.(.+)$/.exec(name);
    if (m !== null) sites.add(m[1]!);
  }
  return sites.size > 0 ? [...sites] : undefined;
}

/** The method's UNet with the case's sites (its default ones when the case records none). */
export function e4eUNet(ctx: GoldenContext): Promise<UNetRunner> {
  const model = ctx.model();
  return model.unet(e4eUNetVariant(model.unetConfig, hookedSites(ctx)));
}

/** `unet_plain` / `unet_freeu` and prefixed copies: sample, timestep, encoder_hidden_states under `${prefix}unet.`. */
export async function runPlainUNet(ctx: GoldenContext, prefix: string, group: string): Promise<Record<string, Tensor>> {
  const freeu = group.endsWith('unet_freeu');
  const unet = await ctx.model().unet({ freeu });
  const result = await unet.call({
    sample: floatTensor(ctx, `${prefix}unet.sample`),
    timestep: scalarInt(ctx, `${prefix}unet.timestep`),
    encoderHiddenStates: floatTensor(ctx, `${prefix}unet.encoder_hidden_states`),
  });
  return { [`${group}.out`]: result.noise };
}

export async function runUNetGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  return runPlainUNet(ctx, '', group);
}

/** `unet_e4e` (baseline), `unet_e4e_match`, `unet_e4e_structcopy`, `unet_e4e_match_masked`, `unet_e4e_vswap`. */
export async function runE4EGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const outName = group === 'unet_e4e' ? 'unet_e4e.baseline' : `${group}.out`;
  const step = modelStep(ctx, group, outName);
  const sample = floatTensor(ctx, 'unet_e4e.sample');
  const masked = group.endsWith('_masked');
  const mode = injectionMode(step, featRange(ctx), group.endsWith('_vswap') ? 'vInjection' : 'match');
  const e4e: E4EControls = {
    mode,
    slots: injectionSlots(sample.dims[0] === 6),
    maskStruct: masked ? maskTensor(ctx, 'inputs.mask_struct') : undefined,
    maskApp: masked ? maskTensor(ctx, 'inputs.mask_app') : undefined,
  };
  const unet = await e4eUNet(ctx);
  const sites = unet.info.processed;
  const result = await unet.call({
    sample, timestep: scalarInt(ctx, 'unet_e4e.timestep'), encoderHiddenStates: floatTensor(ctx, 'unet_e4e.encoder_hidden_states'),
    feeds: e4eFeeds(e4e, sites, sample.dims[0]!),
  });
  const matches = matchesOf(result.outputs, sites);
  const out: Record<string, Tensor> = { [outName]: result.noise };
  for (const name of ctx.outputs(group)) {
    const m = new RegExp(`^${group}\\.match_index\\.(.+)$`).exec(name);
    if (m === null) continue;
    const site = m[1]!;
    const idx = matches[site];
    if (idx === undefined) throw new GoldenError(`${name}: layer ${site} is not one of our hooked sites (${sites.join(', ')})`);
    out[name] = { dtype: 'int64', dims: [idx.length], data: idx };
  }
  ctx.note(`model.step ${step} -> ${mode}`);
  return out;
}
