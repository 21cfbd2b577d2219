/**
 * The component phases of `npm run bench` (text, vae, unet batch 1/2, unet batch 6), each run in its own child
 * process by bench.ts; every phase returns its figures (see bench/README.md).
 */
import { buildClipTextModel } from '../src/models/clip/clip-text-model.js';
import { buildVaeDecoder, buildVaeEncoder } from '../src/models/vae/autoencoder-kl.js';
import { officialFreeU } from '../src/models/unet/freeu.js';
import { e4eFeeds, injectionSlots, matchesOf } from '../src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../src/methods/eye-for-an-eye/index.js';
import { StableDiffusionModel, type ModelOptions } from '../src/runtime/stable-diffusion.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { allFinite, cpuSeconds, log, maxRssGb, randn, round, StatusClock, timeCalls, type Args, type Figures } from './common.js';

export function openModel(args: Args, clock: StatusClock, extra: Partial<ModelOptions> = {}): StableDiffusionModel {
  const options: ModelOptions = { cacheDir: args.graphDir, onStatus: clock.onStatus, device: args.device, precision: args.precision, ...extra };
  if (args.threads !== undefined) options.threads = args.threads;
  return StableDiffusionModel.open(args.modelDir, options);
}

/**
 * How long a cache HIT takes for a graph that is in the cache (key: code fingerprint, configs, weights headers;
 * entry validation). The request mirrors StableDiffusionModel.session(); if it does not hit, the mirror is stale.
 */
function cacheHitSeconds(model: StableDiffusionModel, name: string, component: 'unet' | 'vae' | 'text_encoder', config: unknown): number | null {
  const w = model.componentWeights(component);
  const t = performance.now();
  try {
    model.cache.obtain({
      name,
      config: { config, target: component === 'unet' ? model.target : model.fp32Target },
      weightFiles: w.files,
      build: () => {
        throw new Error('cache miss');
      },
    });
  } catch {
    log(`cache-hit check for ${name} missed (bench mirror of the cache request is out of date)`);
    return null;
  }
  return round((performance.now() - t) / 1000, 4);
}

export async function phaseText(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const model = openModel(args, clock);
  const cfg = model.textConfig;
  await model.session('text_encoder', 'text_encoder', cfg, (w) => ({ graph: buildClipTextModel(w, cfg) }));
  const open = clock.split();
  const hit = cacheHitSeconds(model, 'text_encoder', 'text_encoder', cfg);
  let out: Tensor<'float32'> | undefined;
  const timing = await timeCalls(
    'text encoder (1 prompt)',
    async () => {
      out = await model.encodeText(['a photograph of an astronaut riding a horse']);
    },
    Math.max(args.calls, 3),
  );
  await model.dispose();
  return {
    text_graph: open,
    text_cache_hit_s: hit,
    text_s: timing.mean_s,
    text_timing: timing,
    text_finite: out !== undefined && allFinite(out),
    rss_text_gb: round(maxRssGb(), 2),
  };
}

export async function phaseVae(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const model = openModel(args, clock);
  const cfg = model.vaeConfig;
  const image = randn([1, 3, 512, 512], 7);
  for (let i = 0; i < image.data.length; i++) image.data[i] = Math.tanh(image.data[i]!);
  const figures: Figures = {};

  await model.session('vae_encoder', 'vae', cfg, (w) => ({ graph: buildVaeEncoder(w, cfg) }));
  figures['vae_encoder_graph'] = clock.split();
  figures['vae_encoder_cache_hit_s'] = cacheHitSeconds(model, 'vae_encoder', 'vae', cfg);
  let latent: Tensor<'float32'> | undefined;
  const enc = await timeCalls(
    'VAE encode 512x512',
    async () => {
      latent = await model.encodeImage(image);
    },
    args.calls,
  );
  figures['vae_encode_s'] = enc.mean_s;
  figures['vae_encode_timing'] = enc;

  clock.reset();
  await model.session('vae_decoder', 'vae', cfg, (w) => ({ graph: buildVaeDecoder(w, cfg) }));
  figures['vae_decoder_graph'] = clock.split();
  figures['vae_decoder_cache_hit_s'] = cacheHitSeconds(model, 'vae_decoder', 'vae', cfg);
  const z = latent ?? randn([1, 4, 64, 64], 8);
  let decoded: Tensor<'float32'> | undefined;
  const dec = await timeCalls(
    'VAE decode 64x64 -> 512x512',
    async () => {
      decoded = await model.decodeLatent(z);
    },
    args.calls,
  );
  figures['vae_decode_s'] = dec.mean_s;
  figures['vae_decode_timing'] = dec;
  figures['vae_finite'] = latent !== undefined && allFinite(latent) && decoded !== undefined && allFinite(decoded);
  await model.dispose();
  figures['rss_vae_gb'] = round(maxRssGb(), 2);
  return figures;
}

export function unetInputs(batch: number): { sample: Tensor<'float32'>; encoderHiddenStates: Tensor<'float32'> } {
  const ehs = randn([batch, 77, 768], 11);
  for (let i = 0; i < ehs.data.length; i++) ehs.data[i] = ehs.data[i]! * 0.5;
  return { sample: randn([batch, 4, 64, 64], 10), encoderHiddenStates: ehs };
}

async function openUNet(args: Args, clock: StatusClock, memoryArena: boolean) {
  const model = openModel(args, clock, { memoryArena });
  const variant = e4eUNetVariant(model.unetConfig);
  const runner = await model.unet(variant);
  const open = clock.split();
  const hit = cacheHitSeconds(model, 'unet_freeu_e4e', 'unet', {
    config: model.unetConfig,
    freeu: officialFreeU(model.unetConfig),
    processors: variant.processors?.key,
  });
  return { model, runner, open, hit, sites: runner.info.processed };
}

export async function phaseUNet(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const { model, runner, open, hit, sites } = await openUNet(args, clock, true);
  const figures: Figures = { unet_graph: open, unet_cache_hit_s: hit, e4e_sites: sites.length };
  let finite = true;
  for (const batch of [1, 2]) {
    const inputs = unetInputs(batch);
    const timing = await timeCalls(
      `UNet batch ${batch} (FreeU, e4e neutral)`,
      async () => {
        const r = await runner.call({ ...inputs, timestep: 501 }); // processors neutral (mode off), as in the inversion
        finite &&= allFinite(r.noise);
      },
      args.calls,
    );
    figures[`unet_b${batch}_s`] = timing.mean_s;
    figures[`unet_b${batch}_min_s`] = timing.min_s;
    figures[`unet_b${batch}_timing`] = timing;
    figures[`rss_unet_after_b${batch}_gb`] = round(maxRssGb(), 2);
  }
  figures['unet_finite'] = finite;
  await model.dispose();
  return figures;
}

export async function phaseUNetB6(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const { model, runner, open, sites } = await openUNet(args, clock, args.b6Arena);
  const figures: Figures = { unet_b6_graph: open, unet_b6_arena: args.b6Arena, rss_b6_after_session_gb: round(maxRssGb(), 2) };
  const inputs = unetInputs(6);
  const slots = injectionSlots(true);
  let finite = true;
  let matched = 0;
  const offCpu: number[] = [];
  const onCpu: number[] = [];
  const call = async (mode: 'off' | 'match'): Promise<number> => {
    (globalThis as { gc?: () => void }).gc?.();
    const c = process.cpuUsage();
    const t = performance.now();
    const r = await runner.call({ ...inputs, timestep: 501, feeds: e4eFeeds({ mode, slots }, sites, 6) });
    const s = (performance.now() - t) / 1000;
    (mode === 'off' ? offCpu : onCpu).push(cpuSeconds(c));
    finite &&= allFinite(r.noise);
    if (mode === 'match') matched = Object.values(matchesOf(r.outputs, sites)).reduce((n, m) => n + m.filter((x) => x >= 0n).length, 0);
    return s;
  };
  const warm = await call('off');
  offCpu.length = 0;
  log(`UNet batch 6 (arena ${args.b6Arena ? 'ON' : 'off'}): warm-up ${warm.toFixed(2)} s`);
  const off: number[] = [];
  const on: number[] = [];
  // Alternate OFF and ON so drift (thermal, page cache) hits both alike; one pair only when calls are slow.
  const pairs = warm > 45 ? 1 : args.calls;
  for (let i = 0; i < pairs; i++) {
    off.push(await call('off'));
    log(`UNet batch 6 e4e off: ${off[i]!.toFixed(2)} s`);
    on.push(await call('match'));
    log(`UNet batch 6 e4e match: ${on[i]!.toFixed(2)} s`);
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  figures['unet_b6_s'] = round(mean(off));
  figures['unet_b6_match_s'] = round(mean(on));
  figures['unet_b6_min_s'] = round(Math.min(...off));
  figures['unet_b6_match_min_s'] = round(Math.min(...on));
  // On a machine shared with other work, wall-clock means are noisy: the overhead is taken from the fastest call
  // of each kind, and also given from process CPU time.
  figures['match_overhead_pct'] = round(((Math.min(...on) - Math.min(...off)) / Math.min(...off)) * 100, 2);
  figures['match_overhead_mean_pct'] = round(((mean(on) - mean(off)) / mean(off)) * 100, 2);
  figures['match_overhead_cpu_pct'] = round(((mean(onCpu) - mean(offCpu)) / mean(offCpu)) * 100, 2);
  figures['unet_b6_timing'] = {
    first_s: round(warm),
    off_s: off.map((x) => round(x)),
    match_s: on.map((x) => round(x)),
    off_cpu_s: offCpu.map((x) => round(x)),
    match_cpu_s: onCpu.map((x) => round(x)),
  };
  figures['unet_b6_matched_tokens'] = matched;
  figures['unet_b6_finite'] = finite;
  figures['peak_rss_b6_gb'] = round(maxRssGb(), 2);
  await model.dispose();
  return figures;
}
