/**
 * Group `cia_unet`: single calls of Cross-Image Attention's UNet on a batch [out, style, struct], one per output
 * `cia_unet.<call>.out`, at the `model_step` its params give (else io.json's cia_unet_steps), with the swap unless
 * the call is `noswap`, and its `contrast_strength` (else run_config's); plus the out row's attention map before /
 * after the contrast of the layers `cia_unet.<call>.attn_pre|attn_post.<layer>` name.
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ciaForward, type SwapRanges } from '../engine.js';
import type { GoldenContext } from '../runner.js';
import { eachOutput, runConfigNumber, runConfigRange } from './common.js';
import { resolveUNetInputs } from './unet.js';

/** The swap ranges of a case: run_config cross_attn_32_range / cross_attn_64_range. */
export function swapRanges(ctx: GoldenContext): SwapRanges {
  return { range32: runConfigRange(ctx, 'cross_attn_32_range'), range64: runConfigRange(ctx, 'cross_attn_64_range') };
}

function callStep(ctx: GoldenContext, call: string, outName: string): number {
  const fromParams = ctx.golden.tensors[outName]?.params?.['model_step'];
  if (typeof fromParams === 'number') return fromParams;
  const steps = ctx.golden.meta['cia_unet_steps'];
  const fromSteps = typeof steps === 'object' && steps !== null ? (steps as Record<string, unknown>)[call] : undefined;
  if (typeof fromSteps === 'number') return fromSteps;
  throw new GoldenError(`${outName}: io.json gives no model_step for call '${call}' (params.model_step or cia_unet_steps.${call})`);
}

/** Whether a call swaps: params.perform_swap, else what its producer / meaning say, else every call but `noswap`. */
function performsSwap(ctx: GoldenContext, call: string, outName: string): boolean {
  const meta = ctx.golden.tensors[outName];
  const param = meta?.params?.['perform_swap'];
  if (typeof param === 'boolean') return param;
  const said = /perform_swap['"]?\s*[:=]\s*(True|False)/.exec(`${meta?.producer ?? ''} ${meta?.meaning ?? ''}`);
  if (said !== null) return said[1] === 'True';
  return call !== 'noswap';
}

const PROBE = /^([^.]+)\.([^.]+)\.attn_(pre|post)\.(.+)$/;

export async function runCIAUNetGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const names = ctx.outputs(group);
  const calls = [...new Set(names.map((n) => n.split('.')[1]!))];
  const out: Record<string, Tensor> = {};
  for (const call of calls) {
    const outName = `${group}.${call}.out`;
    const probes = names.map((n) => PROBE.exec(n)).filter((m): m is RegExpExecArray => m !== null && m[2] === call);
    const probeSites = [...new Set(probes.map((m) => m[4]!))];
    const computed = await eachOutput(ctx, [outName], async () => {
      const { sample, timestep, context } = resolveUNetInputs(ctx, outName, group);
      const step = callStep(ctx, call, outName);
      const contrast = ctx.golden.tensors[outName]?.params?.['contrast_strength'];
      const result = await ciaForward(ctx.model(), {
        modelStep: step,
        ranges: swapRanges(ctx),
        contrastStrength: typeof contrast === 'number' ? contrast : runConfigNumber(ctx, 'contrast_strength'),
        performSwap: performsSwap(ctx, call, outName),
        sample: sample.value,
        timestep: timestep.value,
        encoderHiddenStates: context.value,
        probeSites,
      });
      ctx.note(`${call}: model.step ${step}, swapped layers: ${result.swapped.length === 0 ? 'none' : result.swapped.join(', ')}`);
      const listed: unknown = ctx.golden.tensors[outName]?.params?.['swapped_layers'];
      if (Array.isArray(listed) && JSON.stringify(listed.map(String).sort()) !== JSON.stringify([...result.swapped].sort())) {
        throw new GoldenError(`${outName}: the reference swapped ${JSON.stringify(listed)}, our schedule swaps ${JSON.stringify(result.swapped)}`);
      }
      for (const m of probes) out[m[0]] = result.probes[m[4]!]![m[3] === 'pre' ? 'pre' : 'post'];
      return result.noise;
    });
    Object.assign(out, computed);
  }
  return out;
}
