/**
 * The `cia` phase of `npm run bench`: one Cross-Image Attention transfer step at 512x512 = its two UNet calls on
 * the batch [out, style, struct] (latent 64x64, `--cia-latent` for a smaller check), the pass with the K/V swap and
 * the contrast at every swap site (a swap step, not a structure refresh) and the pass without (swap guidance),
 * in the UNet graph the pipeline runs (FreeU, the CIA processors, self-segmentation recording neutral).
 */
import { officialFreeU } from '../src/models/unet/freeu.js';
import { ciaFeeds } from '../src/methods/cross-image-attention/controls.js';
import { ciaUNetVariant, swapSitesOf } from '../src/methods/cross-image-attention/index.js';
import { Branch } from '../src/methods/shared/branches.js';
import type { StableDiffusionModel } from '../src/runtime/stable-diffusion.js';
import type { UNetRunner } from '../src/runtime/unet-runner.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { log, maxRssGb, randn, round, StatusClock, timeCalls, type Args, type Figures } from './common.js';
import { openModel } from './phases.js';

export const CIA_BATCH = 3;

/** The graph the CIA phase runs, as the graph cache names and keys it (for the count phase). */
export function ciaUNetRequest(model: StableDiffusionModel): { name: string; config: unknown } {
  const variant = ciaUNetVariant(model.unetConfig, { record: true });
  return { name: 'unet_freeu_cia', config: { config: model.unetConfig, freeu: officialFreeU(model.unetConfig), processors: variant.processors?.key ?? null } };
}

export function ciaInputs(latent: number): { sample: Tensor<'float32'>; encoderHiddenStates: Tensor<'float32'> } {
  const ehs = randn([CIA_BATCH, 77, 768], 11);
  for (let i = 0; i < ehs.data.length; i++) ehs.data[i] = ehs.data[i]! * 0.5;
  return { sample: randn([CIA_BATCH, 4, latent, latent], 10), encoderHiddenStates: ehs };
}

/** One UNet call of a CIA step: `swap` gives every swap site the style row's K/V (a swap step), else none. */
export function ciaCall(runner: UNetRunner, latent: number, swap: boolean): ReturnType<UNetRunner['call']> {
  const sites = swapSitesOf(runner);
  const kv = swap ? Object.fromEntries(sites.map((s) => [s.modulePath, Branch.Style])) : {};
  const feeds = ciaFeeds(
    { kv, contrast: 1.67 },
    sites.map((s) => s.modulePath),
    CIA_BATCH,
  );
  return runner.call({ ...ciaInputs(latent), timestep: 501, feeds });
}

export async function phaseCIA(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const model = openModel(args, clock, { memoryArena: false });
  const runner = await model.unet(ciaUNetVariant(model.unetConfig, { record: true }));
  const figures: Figures = { cia_graph: clock.split(), cia_latent: args.ciaLatent, cia_swap_sites: swapSitesOf(runner).length };
  const latent = args.ciaLatent;
  let finite = true;
  const parts = { swap: [] as number[], noSwap: [] as number[] };
  const timing = await timeCalls(
    `CIA step ${latent * 8}x${latent * 8} (batch ${CIA_BATCH}: swap + no-swap pass)`,
    async () => {
      let t = performance.now();
      const a = await ciaCall(runner, latent, true);
      parts.swap.push((performance.now() - t) / 1000);
      t = performance.now();
      const b = await ciaCall(runner, latent, false);
      parts.noSwap.push((performance.now() - t) / 1000);
      finite &&= [a.noise, b.noise].every((n) => n.data.every(Number.isFinite));
    },
    args.calls,
  );
  // the warm-up step is not part of the per-pass figures
  const timed = (xs: number[]): number[] => xs.slice(1);
  const min = (xs: number[]): number => round(Math.min(...timed(xs)));
  figures['cia_step_s'] = timing.mean_s;
  figures['cia_step_min_s'] = timing.min_s;
  figures['cia_step_timing'] = timing;
  const swapMin = min(parts.swap);
  const noSwapMin = min(parts.noSwap);
  figures['cia_swap_min_s'] = swapMin;
  figures['cia_noswap_min_s'] = noSwapMin;
  figures['cia_finite'] = finite;
  figures['peak_rss_cia_gb'] = round(maxRssGb(), 2);
  log(`CIA step: swap pass ${swapMin} s, no-swap pass ${noSwapMin} s (fastest)`);
  await model.dispose();
  return figures;
}
