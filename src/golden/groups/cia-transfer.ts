/**
 * Group `cia_transfer`: Cross-Image Attention's whole denoising loop from the case's inverted latents and noise maps
 * (the inversion is checked by its own group), then decoded. Masked AdaIN runs with the case's self-segmentation
 * masks FORCED (the README's test mode: `segment.mask_struct_64` / `segment.mask_style_64` as the content / style
 * masks), so this group checks the transfer independently of the segmentation (group `segment`).
 *
 * A second run with our own self-segmentation (natural mode: maps recorded by our UNet, our k-means) is a diagnostic:
 * its masks must equal the case's and its latents agree within cia_transfer.latents' tolerance (ctx.check lines).
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { compareTensors, type CompareResult } from '../compare.js';
import { ciaTransferLoop, type CIATransferRun, type LatentMasks } from '../engine.js';
import { latentRowsRole, resolveInput } from '../inputs.js';
import type { GoldenContext } from '../runner.js';
import { decodedImages, noteInputs, runConfigNumber, runConfigRange, runConfigString, stacked } from './common.js';
import { swapRanges } from './cia-unet.js';

/** The masks the reference's callback computed, as documented for the forced-mask mode. */
export const FORCED_MASKS = { structure: 'segment.mask_struct_64', appearance: 'segment.mask_style_64' } as const;

function forcedMasks(ctx: GoldenContext, latent: readonly [number, number, number]): LatentMasks {
  const read = (name: string): Float32Array => {
    if (!ctx.golden.has(name)) throw new GoldenError(`${ctx.golden.dir}: masked AdaIN in forced-mask mode needs ${name}, which the case lacks`);
    const t = ctx.golden.get(name);
    if (t.dims.length !== 2 || t.dims[0] !== latent[1] || t.dims[1] !== latent[2]) {
      throw new GoldenError(`${name}: shape [${t.dims.join(', ')}] is not the latent size [${latent[1]}, ${latent[2]}]`);
    }
    return Float32Array.from(t.data as ArrayLike<number>, (v) => (Number(v) !== 0 ? 1 : 0));
  };
  return { structure: read(FORCED_MASKS.structure), appearance: read(FORCED_MASKS.appearance) };
}

interface Inversions {
  app: { xts: Float32Array[]; zs: Float32Array[] };
  struct: { xts: Float32Array[]; zs: Float32Array[] };
  latentDims: [number, number, number];
}

function inversions(ctx: GoldenContext, anchor: string): Inversions {
  const facts = ctx.model().facts;
  const numSteps = runConfigNumber(ctx, 'num_timesteps');
  let latentDims: [number, number, number] | undefined;
  const branch = (which: 'app' | 'struct'): Inversions['app'] => {
    const zs = resolveInput(ctx.golden, latentRowsRole(facts, `${which} inversion noise maps (zs)`, numSteps, latentDims, [`inversion.${which}.zs`]), {
      anchor,
    });
    const shape = ctx.golden.tensors[zs.name]!.shape;
    latentDims = (shape.length === 5 ? shape.slice(2) : shape.slice(1)) as [number, number, number];
    const xts = resolveInput(ctx.golden, latentRowsRole(facts, `${which} inversion latents (wts)`, numSteps + 1, latentDims, [`inversion.${which}.wts`]), {
      anchor,
    });
    noteInputs(ctx, anchor, { [`${which}.zs`]: zs, [`${which}.wts`]: xts });
    return { xts: xts.value, zs: zs.value };
  };
  const app = branch('app');
  const struct = branch('struct');
  return { app, struct, latentDims: latentDims! };
}

const int64 = (values: readonly number[]): Tensor<'int64'> => ({ dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });

function runLoop(ctx: GoldenContext, inv: Inversions, masks: LatentMasks | undefined, natural: boolean): Promise<CIATransferRun> {
  const objectNoun = ctx.golden.runConfig['object_noun'] ?? ctx.golden.runConfig['domain_name'];
  if (natural && typeof objectNoun !== 'string') throw new GoldenError(`${ctx.golden.dir}: io.json run_config has no object_noun / domain_name string`);
  return ciaTransferLoop(ctx.model(), {
    app: inv.app,
    struct: inv.struct,
    latentDims: inv.latentDims,
    prompt: runConfigString(ctx, 'prompt'),
    numSteps: runConfigNumber(ctx, 'num_timesteps'),
    skip: runConfigNumber(ctx, 'skip_steps'),
    ranges: swapRanges(ctx),
    adainRange: runConfigRange(ctx, 'adain_range'),
    swapGuidanceScale: runConfigNumber(ctx, 'swap_guidance_scale'),
    contrastStrength: runConfigNumber(ctx, 'contrast_strength'),
    masks,
    selfSegmentation: natural ? { objectNoun: objectNoun as string } : undefined,
  });
}

/** The label of the natural-mode check lines. */
export const NATURAL_CHECK = 'self-segmentation (natural mode)';

function failed(label: string, message: string): CompareResult {
  return { label, ok: false, maxAbs: NaN, maxRel: NaN, worstIndex: [], mismatches: 0, count: 0, pairs: [], shapeError: message };
}

/** Natural mode: our self-segmentation's masks against the case's, and the latents of that run. Never throws. */
async function checkNatural(ctx: GoldenContext, group: string, inv: Inversions): Promise<void> {
  try {
    const run = await runLoop(ctx, inv, undefined, true);
    const [, h, w] = inv.latentDims;
    for (const [which, name] of Object.entries(FORCED_MASKS) as ['structure' | 'appearance', string][]) {
      const ours: Tensor<'float32'> = { dtype: 'float32', dims: [h, w], data: run.masks?.[which] ?? new Float32Array(h * w) };
      const theirs: Tensor<'float32'> = { dtype: 'float32', dims: [h, w], data: forcedMasks(ctx, inv.latentDims)[which] };
      ctx.check(compareTensors(ours, theirs, { rtol: 0, atol: 0, label: `${NATURAL_CHECK}: ${which} mask = ${name}` }));
    }
    const name = `${group}.latents`;
    if (ctx.golden.has(name)) {
      const ours = { ...stacked(run.iterationLatents.flat(), inv.latentDims), dims: [run.iterationLatents.length, 3, ...inv.latentDims] };
      ctx.check(compareTensors(ours, ctx.golden.get(name), { ...ctx.golden.tolerance(name), label: `${NATURAL_CHECK}: ${name}` }));
    }
  } catch (err) {
    ctx.check(failed(NATURAL_CHECK, `natural-mode run failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

export async function runCIATransferGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const anchor = [`${group}.init_latents`, `${group}.final_latents`].find((n) => ctx.golden.has(n)) ?? `${group}.final_latents`;
  const inv = inversions(ctx, anchor);
  const latentDims = inv.latentDims;
  const masked = ctx.golden.runConfig['use_masked_adain'] !== false;
  const masks = masked ? forcedMasks(ctx, latentDims) : undefined;
  if (masked) ctx.note(`masked AdaIN with the forced masks ${FORCED_MASKS.structure} (content) and ${FORCED_MASKS.appearance} (style)`);
  const run = await runLoop(ctx, inv, masks, false);
  const perIteration = (rows: Float32Array[][]): Tensor<'float32'> => ({ ...stacked(rows.flat(), latentDims), dims: [rows.length, 3, ...latentDims] });
  const skip = runConfigNumber(ctx, 'skip_steps');
  const [, h, w] = latentDims;
  const out: Record<string, Tensor> = {
    [`${group}.init_latents`]: stacked([inv.struct.xts[skip]!, inv.app.xts[skip]!, inv.struct.xts[skip]!], latentDims),
    [`${group}.timesteps`]: int64(run.timesteps),
    [`${group}.model_step`]: int64(run.modelSteps),
    [`${group}.swap_strength`]: { dtype: 'float64', dims: [run.swapStrengths.length], data: Float64Array.from(run.swapStrengths) },
    [`${group}.swap_guidance_applied`]: { dtype: 'uint8', dims: [run.guidanceApplied.length], data: Uint8Array.from(run.guidanceApplied, Number) },
    [`${group}.noise_pred_swap`]: perIteration(run.noisePredSwap),
    [`${group}.noise_pred_no_swap`]: perIteration(run.noisePredNoSwap),
    [`${group}.noise_pred`]: perIteration(run.noisePred),
    [`${group}.latents`]: perIteration(run.iterationLatents),
    [`${group}.latent0_before_adain`]: stacked(run.latent0BeforeAdain, latentDims),
    [`${group}.final_latents`]: stacked(run.latents, latentDims),
  };
  if (run.masks !== undefined) {
    const u8 = (m: Float32Array): Tensor<'uint8'> => ({ dtype: 'uint8', dims: [h, w], data: Uint8Array.from(m, (v) => (v === 1 ? 1 : 0)) });
    out[`${group}.adain_mask_struct`] = u8(run.masks.structure);
    out[`${group}.adain_mask_app`] = u8(run.masks.appearance);
  }
  const images = await decodedImages(ctx.model(), out[`${group}.final_latents`] as Tensor<'float32'>);
  out[`${group}.image_float`] = images.float;
  out[`${group}.image_uint8`] = images.uint8;
  if (!masked) ctx.note('plain AdaIN (use_masked_adain false): no self-segmentation to check');
  else if (ctx.checks) await checkNatural(ctx, group, inv);
  else ctx.note('natural-mode self-segmentation check skipped (--no-checks)');
  return out;
}
