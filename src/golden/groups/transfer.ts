/**
 * Group `transfer`: the whole denoising loop from the case's inverted latents and noise maps (the inversion is
 * checked by its own group), with the feature matching FORCED to the case's recorded decisions (the parity mode the
 * golden README recommends), then decoded. A second run in natural argmax mode is compared up to its first flipped
 * decision, and where that happens is reported.
 */
import { ddimSchedule } from '../../diffusion/ddim-schedule.js';
import { GoldenError } from '../../errors.js';
import type { StableDiffusionModel } from '../../runtime/stable-diffusion.js';
import { runE4ELoop, type E4ELoopResult } from '../../methods/eye-for-an-eye/loop.js';
import { downMask } from '../../methods/shared/masks.js';
import { sliceFirst, type Tensor } from '../../tensor/tensor.js';
import { compareTensors } from '../compare.js';
import type { GoldenContext } from '../runner.js';
import { e4eUNet, floatTensor, maskTensor, stacked } from './unet.js';
import { runConfigNumber, runConfigString } from './inversion.js';

function rows(t: Tensor<'float32'>): Float32Array[] {
  return Array.from({ length: t.dims[0]! }, (_, i) => Float32Array.from(sliceFirst(t, i).data));
}

function range(ctx: GoldenContext, key: string): { start: number; end: number } {
  const r = ctx.golden.runConfig[key];
  if (!Array.isArray(r) || r.length !== 2) throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be [start, end]`);
  return { start: Number(r[0]), end: Number(r[1]) };
}


/** Golden match indices of a site at one iteration, or undefined when that iteration ran no matching. */
function goldenMatches(ctx: GoldenContext, sites: readonly string[], iteration: number): Record<string, BigInt64Array> | undefined {
  const forced: Record<string, BigInt64Array> = {};
  for (const site of sites) {
    const name = `transfer.match_index.${site}`;
    if (!ctx.golden.has(name)) continue;
    const t = ctx.golden.get(name);
    const n = t.dims[1]!;
    const row = Array.from((t.data as Int32Array).subarray(iteration * n, (iteration + 1) * n), Number);
    if (row.every((v) => v === -2)) return undefined;
    forced[site] = BigInt64Array.from(row.map(BigInt));
  }
  return forced;
}

async function runLoop(ctx: GoldenContext, model: StableDiffusionModel, forced: boolean): Promise<{ result: E4ELoopResult; sites: readonly string[] }> {
  const unet = await e4eUNet(ctx);
  const sites = unet.info.processed;
  const prompt = runConfigString(ctx, 'prompt');
  const emb = await model.encodeText(['', prompt]);
  const [c, h, w] = floatTensor(ctx, 'inversion.app.zs').dims.slice(1) as [number, number, number];
  const size = 77 * emb.dims[2]!;
  const uncond: Tensor<'float32'> = { dtype: 'float32', dims: [1, 77, emb.dims[2]!], data: emb.data.slice(0, size) };
  const cond: Tensor<'float32'> = { dtype: 'float32', dims: [1, 77, emb.dims[2]!], data: emb.data.slice(size, 2 * size) };
  const useMasks = ctx.golden.runConfig['mask_use'] === true && ctx.golden.has('inputs.mask_struct');
  const maskStruct = useMasks ? maskTensor(ctx, 'inputs.mask_struct') : undefined;
  const maskApp = useMasks ? maskTensor(ctx, 'inputs.mask_app') : undefined;
  const masked = useMasks && ctx.golden.runConfig['use_masked_adain'] !== false;
  const result = await runE4ELoop({
    unet, schedule: ddimSchedule(model.schedulerConfig),
    app: { xts: rows(floatTensor(ctx, 'inversion.app.wts')), zs: rows(floatTensor(ctx, 'inversion.app.zs')) },
    struct: { xts: rows(floatTensor(ctx, 'inversion.struct.wts')), zs: rows(floatTensor(ctx, 'inversion.struct.zs')) },
    latentDims: [c, h, w],
    embeddings: { uncond, cond },
    structureMask: maskStruct, appearanceMask: maskApp,
  }, {
    numSteps: runConfigNumber(ctx, 'num_timesteps'),
    skip: runConfigNumber(ctx, 'skip_steps'),
    guidanceScale: runConfigNumber(ctx, 'guidance_scale'),
    featRange: range(ctx, 'feat_range'),
    adainRange: range(ctx, 'adain_range'),
    injection: ctx.golden.runConfig['do_v_swap'] === true ? 'vInjection' : 'match',
    adainMasks: masked && maskStruct !== undefined && maskApp !== undefined
      ? { structure: downMask(maskStruct, h, w), appearance: downMask(maskApp, h, w) } : undefined,
    forcedMatches: forced ? (i) => goldenMatches(ctx, sites, i) : undefined,
  });
  return { result, sites };
}

export async function runTransferGroup(ctx: GoldenContext): Promise<Record<string, Tensor>> {
  const model = ctx.model();
  const { result, sites } = await runLoop(ctx, model, true);
  const { trace } = result;
  const [c, h, w] = floatTensor(ctx, 'inversion.app.zs').dims.slice(1) as [number, number, number];
  const latentDims = [c, h, w];
  const out: Record<string, Tensor> = {
    'transfer.timesteps': { dtype: 'int64', dims: [trace.timesteps.length], data: BigInt64Array.from(trace.timesteps.map(BigInt)) },
    'transfer.model_step': { dtype: 'int64', dims: [trace.modelSteps.length], data: BigInt64Array.from(trace.modelSteps.map(BigInt)) },
    'transfer.noise_pred': stacked(trace.noisePred.flat(), latentDims),
    'transfer.latents': stacked(trace.latents.flat(), latentDims),
    'transfer.latent0_before_adain': stacked(trace.latent0BeforeAdain, latentDims),
    'transfer.final_latents': stacked(result.latents, latentDims),
  };
  out['transfer.noise_pred'] = { ...out['transfer.noise_pred']!, dims: [trace.noisePred.length, 3, ...latentDims] };
  out['transfer.latents'] = { ...out['transfer.latents']!, dims: [trace.latents.length, 3, ...latentDims] };
  const skip = runConfigNumber(ctx, 'skip_steps');
  out['transfer.init_latents'] = stacked([
    rows(floatTensor(ctx, 'inversion.struct.wts'))[skip]!, rows(floatTensor(ctx, 'inversion.app.wts'))[skip]!, rows(floatTensor(ctx, 'inversion.struct.wts'))[skip]!,
  ], latentDims);
  if (ctx.golden.has('inputs.mask_struct')) {
    out['transfer.adain_mask_struct'] = { dtype: 'float32', dims: [h, w], data: downMask(maskTensor(ctx, 'inputs.mask_struct'), h, w) };
    out['transfer.adain_mask_app'] = { dtype: 'float32', dims: [h, w], data: downMask(maskTensor(ctx, 'inputs.mask_app'), h, w) };
  }
  for (const site of sites) {
    const list = trace.matches[site] ?? [];
    const n = list[0]?.length ?? 0;
    const data = new Int32Array(list.length * n);
    list.forEach((m, i) => data.set(Array.from(m, Number), i * n));
    out[`transfer.match_index.${site}`] = { dtype: 'int32', dims: [list.length, n], data };
  }
  // Decode [out, style, struct] -> NHWC float in [0, 1] and the uint8 PIL image.
  const decoded = await model.decodeLatent(out['transfer.final_latents'] as Tensor<'float32'>);
  const [b, ch, hh, ww] = decoded.dims as [number, number, number, number];
  const f = new Float32Array(b * hh * ww * ch);
  const u8 = new Uint8Array(f.length);
  for (let n = 0; n < b; n++) for (let k = 0; k < ch; k++) for (let y = 0; y < hh; y++) for (let x = 0; x < ww; x++) {
    const v = Math.fround(Math.fround(decoded.data[((n * ch + k) * hh + y) * ww + x]! / 2) + 0.5);
    const clamped = Math.min(1, Math.max(0, v));
    const at = ((n * hh + y) * ww + x) * ch + k;
    f[at] = clamped;
    u8[at] = Math.round(Math.fround(clamped * 255));
  }
  out['transfer.image_float'] = { dtype: 'float32', dims: [b, hh, ww, ch], data: f };
  out['transfer.image_uint8'] = { dtype: 'uint8', dims: [b, hh, ww, ch], data: u8 };
  await reportNatural(ctx, model, sites);
  return out;
}

/** Natural argmax mode: where the first decision differs from the reference, and how close the latents are before it. */
async function reportNatural(ctx: GoldenContext, model: StableDiffusionModel, sites: readonly string[]): Promise<void> {
  const { result } = await runLoop(ctx, model, false);
  const iterations = result.trace.latents.length;
  let firstFlip = iterations;
  let where = '';
  for (let i = 0; i < iterations && firstFlip === iterations; i++) {
    for (const site of sites) {
      const golden = goldenMatches(ctx, [site], i)?.[site];
      const ours = result.trace.matches[site]?.[i];
      if (golden === undefined || ours === undefined) continue;
      const k = ours.findIndex((v, j) => v !== golden[j]);
      if (k >= 0) {
        firstFlip = i;
        where = ` (${site}, out token ${k}: ours ${ours[k]}, reference ${golden[k]})`;
        break;
      }
    }
  }
  const latents = floatTensor(ctx, 'transfer.latents');
  const per = latents.data.length / latents.dims[0]!;
  let worst = 0;
  if (firstFlip > 0) {
    const upTo = firstFlip;
    const expected: Tensor<'float32'> = { dtype: 'float32', dims: [upTo * per], data: latents.data.slice(0, upTo * per) };
    const actual: Tensor<'float32'> = { dtype: 'float32', dims: [upTo * per], data: Float32Array.from(result.trace.latents.slice(0, upTo).flat().flatMap((l) => Array.from(l))) };
    const cmp = compareTensors(actual, expected, { rtol: 1e-3, atol: 1e-4, label: 'natural' });
    worst = cmp.maxAbs;
    if (!cmp.ok) throw new GoldenError(`natural argmax mode: transfer.latents differ before the first flipped decision (iterations 0..${upTo - 1}): max|diff| ${cmp.maxAbs}`);
  }
  ctx.note(firstFlip === iterations
    ? `natural argmax mode: every matching decision equals the reference's (${iterations} iterations); latents max|diff| ${worst.toExponential(3)}`
    : `natural argmax mode: first flipped decision at iteration ${firstFlip}${where}; latents before it within rtol 1e-3/atol 1e-4 (max|diff| ${worst.toExponential(3)})`);
}
