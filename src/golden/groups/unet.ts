/**
 * Groups `unet_plain`, `unet_freeu` (one UNet call, stock attention) and `unet_e4e*` (one call of the method's UNet
 * in each mode: baseline, match, structcopy, match_masked, vswap), plus mirrored copies (`nonsquare.unet_plain.out`).
 * Inputs are found by the resolver (inputs.ts) from io.json's documentation of each output.
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { e4eForward, unetForward } from '../engine.js';
import { encoderStatesRole, maskRole, resolveInput, timestepRole, unetSampleRole, type ResolvedInput } from '../inputs.js';
import type { GoldenContext } from '../runner.js';
import { eachOutput, hookedSites, noteInputs, runConfigRange } from './common.js';

interface UNetInputs {
  sample: ResolvedInput<Tensor<'float32'>>;
  timestep: ResolvedInput<number>;
  context: ResolvedInput<Tensor<'float32'>>;
}

/** sample, timestep and encoder_hidden_states of a UNet output, the usual tensors being `${base}.*`. */
export function resolveUNetInputs(ctx: GoldenContext, anchor: string, base: string, namespace?: string): UNetInputs {
  const { golden } = ctx;
  const facts = ctx.model().facts;
  const options = { anchor, namespace };
  const sample = resolveInput(golden, unetSampleRole(facts, golden.tensors[anchor]?.shape, [`${base}.sample`]), options);
  const timestep = resolveInput(golden, timestepRole([`${base}.timestep`]), options);
  const context = resolveInput(golden, encoderStatesRole(facts, sample.value.dims[0]!, [`${base}.encoder_hidden_states`]), options);
  noteInputs(ctx, anchor, { sample, timestep, encoder_hidden_states: context });
  return { sample, timestep, context };
}

/** One stock UNet output (`unet_plain.out`, `unet_freeu.out`, or a mirrored copy under `namespace`). */
export async function runPlainUNetOutput(ctx: GoldenContext, name: string, freeu: boolean, namespace?: string): Promise<Tensor> {
  const { sample, timestep, context } = resolveUNetInputs(ctx, name, 'unet', namespace);
  return unetForward(ctx.model(), { freeu, sample: sample.value, timestep: timestep.value, encoderHiddenStates: context.value });
}

export async function runUNetGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  return eachOutput(ctx, ctx.outputs(group), (name) => runPlainUNetOutput(ctx, name, group === 'unet_freeu'));
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

/** `unet_e4e` (baseline), `unet_e4e_match`, `unet_e4e_structcopy`, `unet_e4e_match_masked`, `unet_e4e_vswap`. */
export async function runE4EGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const { golden } = ctx;
  const sites = await hookedSites(ctx);
  const outName = group === 'unet_e4e' ? 'unet_e4e.baseline' : `${group}.out`;
  const step = modelStep(ctx, group, outName);
  const { sample, timestep, context } = resolveUNetInputs(ctx, outName, 'unet_e4e');
  const masked = group.endsWith('_masked');
  const maskStruct = masked ? resolveInput(golden, maskRole('structure mask', ['inputs.mask_struct']), { anchor: outName }) : undefined;
  const maskApp = masked ? resolveInput(golden, maskRole('appearance mask', ['inputs.mask_app']), { anchor: outName }) : undefined;
  if (masked) noteInputs(ctx, outName, { mask_struct: maskStruct, mask_app: maskApp });
  const result = await e4eForward(ctx.model(), {
    sites,
    modelStep: step,
    featRange: runConfigRange(ctx, 'feat_range'),
    injection: group.endsWith('_vswap') ? 'vInjection' : 'match',
    sample: sample.value,
    timestep: timestep.value,
    encoderHiddenStates: context.value,
    maskStruct: maskStruct?.value,
    maskApp: maskApp?.value,
  });
  const out: Record<string, Tensor> = { [outName]: result.noise };
  for (const name of ctx.outputs(group)) {
    const prefix = `${group}.match_index.`;
    if (!name.startsWith(prefix)) continue;
    const site = name.slice(prefix.length);
    const idx = result.matches[site];
    if (idx === undefined) throw new GoldenError(`${name}: layer ${site} is not one of our hooked sites (${sites.join(', ')})`);
    out[name] = { dtype: 'int64', dims: [idx.length], data: idx };
  }
  ctx.note(`model.step ${step} -> ${result.mode}`);
  return out;
}
