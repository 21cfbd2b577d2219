/**
 * Group `transfer`: the whole denoising loop from the case's inverted latents and noise maps (the inversion is
 * checked by its own group), with the feature matching FORCED to the case's recorded decisions (the parity mode the
 * golden README recommends), then decoded. Those tensors are the group's outputs, always returned.
 *
 * A second run in natural argmax mode is a diagnostic: where its first decision differs from the reference is
 * noted, and its `transfer.latents` before that iteration are compared with transfer.latents' recommended tolerance
 * as a check line of its own (ctx.check). A failure there, or an error of that run, fails the group but never
 * discards the forced-mode tensors.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { compareTensors, type CompareResult } from '../compare.js';
import { adainMask, transferLoop, type GoldenEngine, type TransferRun } from '../engine.js';
import { latentRowsRole, maskRole, resolveInput } from '../inputs.js';
import type { GoldenContext } from '../runner.js';
import { decodedImages, hookedSites, noteInputs, runConfigNumber, runConfigRange, runConfigString, stacked } from './common.js';

const LATENTS = 'transfer.latents';

/** Golden match indices of the sites at one iteration, or undefined when that iteration ran no matching. */
function goldenMatches(ctx: GoldenContext, sites: readonly string[], iteration: number): Record<string, BigInt64Array> | undefined {
  const forced: Record<string, BigInt64Array> = {};
  for (const site of sites) {
    const name = `transfer.match_index.${site}`;
    if (!ctx.golden.has(name)) continue;
    const t = ctx.golden.get(name);
    const n = t.dims[1]!;
    const row = Array.from(t.data as ArrayLike<number | bigint>, Number).slice(iteration * n, (iteration + 1) * n);
    if (row.every((v) => v === -2)) return undefined;
    forced[site] = BigInt64Array.from(row.map(BigInt));
  }
  return forced;
}

interface LoopInputs {
  app: { xts: Float32Array[]; zs: Float32Array[] };
  struct: { xts: Float32Array[]; zs: Float32Array[] };
  latentDims: [number, number, number];
  maskStruct: Tensor<'float32'> | undefined;
  maskApp: Tensor<'float32'> | undefined;
}

/** The inverted latents / noise maps of both images and the masks, from the tensors io.json documents. */
function loopInputs(ctx: GoldenContext, anchor: string): LoopInputs {
  const { golden } = ctx;
  const facts = ctx.model().facts;
  const numSteps = runConfigNumber(ctx, 'num_timesteps');
  let latentDims: [number, number, number] | undefined;
  const branch = (which: 'app' | 'struct'): LoopInputs['app'] => {
    const zs = resolveInput(golden, latentRowsRole(facts, `${which} inversion noise maps (zs)`, numSteps, latentDims, [`inversion.${which}.zs`]), { anchor });
    const shape = golden.tensors[zs.name]!.shape;
    latentDims = (shape.length === 5 ? shape.slice(2) : shape.slice(1)) as [number, number, number];
    const xts = resolveInput(golden, latentRowsRole(facts, `${which} inversion latents (wts)`, numSteps + 1, latentDims, [`inversion.${which}.wts`]), {
      anchor,
    });
    noteInputs(ctx, anchor, { [`${which}.zs`]: zs, [`${which}.wts`]: xts });
    return { xts: xts.value, zs: zs.value };
  };
  const app = branch('app');
  const struct = branch('struct');
  const useMasks = ctx.golden.runConfig['mask_use'] === true;
  const maskStruct = useMasks ? resolveInput(golden, maskRole('structure mask', ['inputs.mask_struct']), { anchor }) : undefined;
  const maskApp = useMasks ? resolveInput(golden, maskRole('appearance mask', ['inputs.mask_app']), { anchor }) : undefined;
  if (useMasks) noteInputs(ctx, anchor, { mask_struct: maskStruct, mask_app: maskApp });
  return { app, struct, latentDims: latentDims!, maskStruct: maskStruct?.value, maskApp: maskApp?.value };
}

async function runLoop(ctx: GoldenContext, engine: GoldenEngine, inputs: LoopInputs, sites: readonly string[], forced: boolean): Promise<TransferRun> {
  const [, h, w] = inputs.latentDims;
  const masked = inputs.maskStruct !== undefined && inputs.maskApp !== undefined && ctx.golden.runConfig['use_masked_adain'] !== false;
  return transferLoop(engine, {
    app: inputs.app,
    struct: inputs.struct,
    latentDims: inputs.latentDims,
    prompt: runConfigString(ctx, 'prompt'),
    sites,
    numSteps: runConfigNumber(ctx, 'num_timesteps'),
    skip: runConfigNumber(ctx, 'skip_steps'),
    guidanceScale: runConfigNumber(ctx, 'guidance_scale'),
    featRange: runConfigRange(ctx, 'feat_range'),
    adainRange: runConfigRange(ctx, 'adain_range'),
    injection: ctx.golden.runConfig['do_v_swap'] === true ? 'vInjection' : 'match',
    maskStruct: inputs.maskStruct,
    maskApp: inputs.maskApp,
    adainMaskStruct: masked ? adainMask(inputs.maskStruct!, h, w) : undefined,
    adainMaskApp: masked ? adainMask(inputs.maskApp!, h, w) : undefined,
    forced: forced ? (i) => goldenMatches(ctx, sites, i) : undefined,
  });
}

export async function runTransferGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const engine = ctx.model();
  // transfer.init_latents documents where the loop starts from; any output of the group will do otherwise.
  const anchor = [`${group}.init_latents`, `${group}.final_latents`].find((n) => ctx.golden.has(n)) ?? ctx.outputs(group)[0] ?? `${group}.final_latents`;
  const inputs = loopInputs(ctx, anchor);
  const sites = await hookedSites(ctx);
  const run = await runLoop(ctx, engine, inputs, sites, true);
  const latentDims = inputs.latentDims;
  const [, h, w] = latentDims;
  const out: Record<string, Tensor> = {
    'transfer.timesteps': { dtype: 'int64', dims: [run.timesteps.length], data: BigInt64Array.from(run.timesteps.map(BigInt)) },
    'transfer.model_step': { dtype: 'int64', dims: [run.modelSteps.length], data: BigInt64Array.from(run.modelSteps.map(BigInt)) },
    'transfer.noise_pred': { ...stacked(run.noisePred.flat(), latentDims), dims: [run.noisePred.length, 3, ...latentDims] },
    [LATENTS]: { ...stacked(run.iterationLatents.flat(), latentDims), dims: [run.iterationLatents.length, 3, ...latentDims] },
    'transfer.latent0_before_adain': stacked(run.latent0BeforeAdain, latentDims),
    'transfer.final_latents': stacked(run.latents, latentDims),
  };
  const skip = runConfigNumber(ctx, 'skip_steps');
  out['transfer.init_latents'] = stacked([inputs.struct.xts[skip]!, inputs.app.xts[skip]!, inputs.struct.xts[skip]!], latentDims);
  if (inputs.maskStruct !== undefined && inputs.maskApp !== undefined) {
    out['transfer.adain_mask_struct'] = { dtype: 'float32', dims: [h, w], data: adainMask(inputs.maskStruct, h, w) };
    out['transfer.adain_mask_app'] = { dtype: 'float32', dims: [h, w], data: adainMask(inputs.maskApp, h, w) };
  }
  for (const site of sites) {
    const list = run.matches[site] ?? [];
    const n = list[0]?.length ?? 0;
    const data = new Int32Array(list.length * n);
    list.forEach((m, i) => data.set(Array.from(m, Number), i * n));
    out[`transfer.match_index.${site}`] = { dtype: 'int32', dims: [list.length, n], data };
  }
  // Decode [out, style, struct] -> NHWC float in [0, 1] and the uint8 PIL image.
  const images = await decodedImages(engine, out['transfer.final_latents'] as Tensor<'float32'>);
  out['transfer.image_float'] = images.float;
  out['transfer.image_uint8'] = images.uint8;
  if (ctx.checks) await checkNatural(ctx, engine, inputs, sites);
  else ctx.note('natural argmax check skipped (--no-checks)');
  return out;
}

/** The label of the natural-argmax check line. */
export const NATURAL_CHECK = 'natural argmax: transfer.latents before the first flipped decision';

function failedCheck(message: string): CompareResult {
  return { label: NATURAL_CHECK, ok: false, maxAbs: NaN, maxRel: NaN, worstIndex: [], mismatches: 0, count: 0, pairs: [], shapeError: message };
}

/**
 * Natural argmax mode: where the first decision differs from the reference, and whether transfer.latents agree
 * before it (within transfer.latents' recommended tolerance). Never throws: a failure is a failing check line.
 */
async function checkNatural(ctx: GoldenContext, engine: GoldenEngine, inputs: LoopInputs, sites: readonly string[]): Promise<void> {
  if (!ctx.golden.has(LATENTS)) {
    ctx.note(`natural argmax mode: not checked (the case has no ${LATENTS})`);
    return;
  }
  try {
    const run = await runLoop(ctx, engine, inputs, sites, false);
    const iterations = run.iterationLatents.length;
    let firstFlip = iterations;
    let where = '';
    for (let i = 0; i < iterations && firstFlip === iterations; i++) {
      const golden = goldenMatches(ctx, sites, i);
      for (const site of sites) {
        const theirs = golden?.[site];
        const ours = run.matches[site]?.[i];
        if (theirs === undefined || ours === undefined) continue;
        const k = ours.findIndex((v, j) => v !== theirs[j]);
        if (k >= 0) {
          firstFlip = i;
          where = ` (${site}, out token ${k}: ours ${ours[k]}, reference ${theirs[k]})`;
          break;
        }
      }
    }
    const expectedAll = ctx.golden.get(LATENTS);
    const per = expectedAll.data.length / expectedAll.dims[0]!;
    const upTo = Math.min(firstFlip, expectedAll.dims[0]!);
    const tol = ctx.golden.tolerance(LATENTS);
    const dims = [upTo, ...expectedAll.dims.slice(1)];
    const expected: Tensor<'float32'> = { dtype: 'float32', dims, data: Float32Array.from((expectedAll.data as Float32Array).subarray(0, upTo * per)) };
    const actual: Tensor<'float32'> = { dtype: 'float32', dims, data: new Float32Array(upTo * per) };
    run.iterationLatents
      .slice(0, upTo)
      .flat()
      .forEach((row, r) => actual.data.set(row, r * row.length));
    const label = `${NATURAL_CHECK} (iterations 0..${upTo - 1})`;
    const result = compareTensors(actual, expected, { ...tol, label });
    if (upTo > 0) ctx.check(result);
    const tolText = `rtol ${tol.rtol} / atol ${tol.atol}`;
    ctx.note(
      firstFlip === iterations
        ? `natural argmax mode: every matching decision equals the reference's (${iterations} iterations); latents max|diff| ${result.maxAbs.toExponential(3)} (${tolText})`
        : `natural argmax mode: first flipped decision at iteration ${firstFlip}${where}; latents before it max|diff| ${result.maxAbs.toExponential(3)} (${tolText})`,
    );
  } catch (err) {
    ctx.check(failedCheck(`natural argmax run failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}
