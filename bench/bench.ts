/**
 * `npm run bench`: SD-1.5-size speed and memory figures on random weights (see bench/README.md).
 *
 * The parent process makes sure the random model exists, then runs each phase (text, vae, unet batch 1/2, unet
 * batch 6) in its own child process, so every phase starts from a clean heap and its peak RSS is its own. The last
 * line printed is one JSON object with every figure.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClipTextConfig, loadUNetConfig, loadVaeConfig } from '../src/config/index.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { buildClipTextModel } from '../src/models/clip/clip-text-model.js';
import { buildVaeDecoder, buildVaeEncoder } from '../src/models/vae/autoencoder-kl.js';
import { officialFreeU } from '../src/models/unet/freeu.js';
import { defaultCacheDir } from '../src/runtime/model-cache.js';
import { defaultE4ESites, StableDiffusionModel, type ModelOptions } from '../src/runtime/stable-diffusion.js';
import { ORT_VERSION } from '../src/runtime/session.js';
import { OFFICIAL_CFG_SLOTS, slotsInput } from '../src/transfer/slots.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { ensureRandomModel } from './random-model.js';
import { clipTextWeights, countParameters, unetWeights, vaeWeights, type WeightSpec } from './weight-list.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root: dist/bench/bench.js -> ../.. */
const REPO = resolve(HERE, '..', '..');
const CONFIG_DIR = join(REPO, 'test', 'fixtures', 'configs', 'sd-1.5');
const TINY_DIR = join(REPO, 'test', 'fixtures', 'golden', 'sd1-tiny', 'model');
const TOKENIZER_DIR = join(TINY_DIR, 'tokenizer');
const GIB = 2 ** 30;
const RESULT_PREFIX = '@@bench-result ';
const PHASES = ['text', 'vae', 'unet', 'unet_b6'] as const;
type Phase = (typeof PHASES)[number];

const TARGETS = {
  unet_b1_s: { max: 4.6, label: 'UNet batch 1 <= 4.6 s' },
  unet_b6_s: { max: 28, label: 'UNet batch 6 <= 28 s' },
  peak_rss_b6_gb: { max: 6, label: 'peak RSS at batch 6 <= 6 GB' },
  match_overhead_pct: { max: 5, label: "matching < 5% of a UNet call" },
} as const;

interface Args {
  modelDir: string;
  graphDir: string;
  quick: boolean;
  only: 'unet' | 'vae' | 'text' | undefined;
  selfCheck: boolean;
  rebuild: boolean;
  threads: number | undefined;
  calls: number;
  phase: Phase | undefined;
  /** Investigation only: keep the CPU memory arena on in the batch-6 session. */
  b6Arena: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const cacheRoot = defaultCacheDir();
  const args: Args = {
    modelDir: join(cacheRoot, 'bench-models', 'sd15-random'),
    graphDir: join(cacheRoot, 'bench-graphs'),
    quick: false, only: undefined, selfCheck: false, rebuild: false, threads: undefined, calls: 2, phase: undefined, b6Arena: false,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--model-dir': args.modelDir = resolve(value(i, a)); i++; break;
      case '--graph-dir': args.graphDir = resolve(value(i, a)); i++; break;
      case '--quick': args.quick = true; break;
      case '--self-check': args.selfCheck = true; break;
      case '--rebuild': args.rebuild = true; break;
      case '--b6-arena': args.b6Arena = true; break;
      case '--only': {
        const v = value(i, a); i++;
        if (v !== 'unet' && v !== 'vae' && v !== 'text') throw new Error(`--only takes unet, vae or text, not ${v}`);
        args.only = v;
        break;
      }
      case '--threads': args.threads = Number(value(i, a)); i++; break;
      case '--calls': args.calls = Math.max(1, Number(value(i, a))); i++; break;
      case '--phase': {
        const v = value(i, a) as Phase; i++;
        if (!PHASES.includes(v)) throw new Error(`unknown phase ${v}`);
        args.phase = v;
        break;
      }
      case '--help': case '-h':
        console.log('usage: npm run bench -- [--quick] [--only unet|vae|text] [--model-dir DIR] [--graph-dir DIR] [--rebuild] [--threads N] [--calls N] [--b6-arena] [--self-check]');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  return args;
}

const started = performance.now();
function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const maxRssGb = (): number => (process.resourceUsage().maxRSS * 1024) / GIB; // maxRSS is in KiB

// ------------------------------------------------------------------------------------------------ inputs

function randn(dims: number[], seed = 1): Tensor<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const uniform = (): number => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    if (i + 1 < n) data[i + 1] = r * Math.sin(t);
  }
  return { dtype: 'float32', dims, data };
}

function allFinite(t: Tensor<'float32'>): boolean {
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------ timing helpers

interface Timing {
  /** The warm-up call (first run of the session at this shape). */
  first_s: number;
  /** Timed calls after the warm-up. */
  runs_s: number[];
  mean_s: number;
  /** The fastest timed call: the least disturbed by other processes on a shared machine. */
  min_s: number;
  /** Process CPU seconds (all threads) of each timed call. */
  cpu_s: number[];
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

async function timeCalls(label: string, fn: () => Promise<unknown>, calls: number, budgetS = Infinity): Promise<Timing> {
  let t = performance.now();
  await fn();
  const first = (performance.now() - t) / 1000;
  log(`${label}: warm-up ${first.toFixed(2)} s`);
  const runs: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < calls; i++) {
    if (i > 0 && runs.reduce((a, b) => a + b, 0) + runs[0]! > budgetS) break;
    (globalThis as { gc?: () => void }).gc?.();
    const c = process.cpuUsage();
    t = performance.now();
    await fn();
    runs.push((performance.now() - t) / 1000);
    cpu.push(cpuSeconds(c));
    log(`${label}: call ${i + 1} ${runs[i]!.toFixed(2)} s (cpu ${cpu[i]!.toFixed(2)} s)`);
  }
  return {
    first_s: round(first), runs_s: runs.map((r) => round(r)), mean_s: round(runs.reduce((a, b) => a + b, 0) / runs.length),
    min_s: round(Math.min(...runs)), cpu_s: cpu.map((r) => round(r)),
  };
}

/** Status-message timestamps: splits "obtain the graph (build or cache hit)" from "create the ORT session". */
class StatusClock {
  private t0 = performance.now();
  loadedAt: number | undefined;
  builtSeconds: number | undefined;
  cached: boolean | undefined;

  reset(): void {
    this.t0 = performance.now();
    this.loadedAt = undefined;
    this.builtSeconds = undefined;
    this.cached = undefined;
  }

  onStatus = (message: string): void => {
    log(message);
    const m = /^loading \S+ \((?:built in ([\d.]+) s|cached)\)/.exec(message);
    if (m !== null) {
      this.loadedAt = performance.now();
      this.cached = m[1] === undefined;
      this.builtSeconds = m[1] === undefined ? undefined : Number(m[1]);
    }
  };

  /** After the session promise resolved: { graph_s (build or cache lookup), built, session_s }. */
  split(): { graph_s: number; built: boolean; build_s: number | null; session_s: number } {
    const end = performance.now();
    const loaded = this.loadedAt ?? this.t0;
    return {
      graph_s: round((loaded - this.t0) / 1000),
      built: this.cached === false,
      build_s: this.builtSeconds ?? null,
      session_s: round((end - loaded) / 1000),
    };
  }
}

function openModel(args: Args, clock: StatusClock, extra: Partial<ModelOptions> = {}): StableDiffusionModel {
  const options: ModelOptions = { cacheDir: args.graphDir, onStatus: clock.onStatus, ...extra };
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
    model.cache.obtain({ name, config, weightFiles: w.files, build: () => { throw new Error('cache miss'); } });
  } catch {
    log(`cache-hit check for ${name} missed (bench mirror of the cache request is out of date)`);
    return null;
  }
  return round((performance.now() - t) / 1000, 4);
}

// ------------------------------------------------------------------------------------------------ phases

type Figures = Record<string, unknown>;

async function phaseText(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const model = openModel(args, clock);
  const cfg = model.textConfig;
  await model.session('text_encoder', 'text_encoder', cfg, (w) => buildClipTextModel(w, cfg));
  const open = clock.split();
  const hit = cacheHitSeconds(model, 'text_encoder', 'text_encoder', cfg);
  let out: Tensor<'float32'> | undefined;
  const timing = await timeCalls('text encoder (1 prompt)', async () => { out = await model.encodeText(['a photograph of an astronaut riding a horse']); }, Math.max(args.calls, 3));
  await model.dispose();
  return {
    text_graph: open, text_cache_hit_s: hit, text_s: timing.mean_s, text_timing: timing,
    text_finite: out !== undefined && allFinite(out), rss_text_gb: round(maxRssGb(), 2),
  };
}

async function phaseVae(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const model = openModel(args, clock);
  const cfg = model.vaeConfig;
  const image = randn([1, 3, 512, 512], 7);
  for (let i = 0; i < image.data.length; i++) image.data[i] = Math.tanh(image.data[i]!);
  const figures: Figures = {};

  await model.session('vae_encoder', 'vae', cfg, (w) => buildVaeEncoder(w, cfg));
  figures['vae_encoder_graph'] = clock.split();
  figures['vae_encoder_cache_hit_s'] = cacheHitSeconds(model, 'vae_encoder', 'vae', cfg);
  let latent: Tensor<'float32'> | undefined;
  const enc = await timeCalls('VAE encode 512x512', async () => { latent = await model.encodeImage(image); }, args.calls);
  figures['vae_encode_s'] = enc.mean_s;
  figures['vae_encode_timing'] = enc;

  clock.reset();
  await model.session('vae_decoder', 'vae', cfg, (w) => buildVaeDecoder(w, cfg));
  figures['vae_decoder_graph'] = clock.split();
  figures['vae_decoder_cache_hit_s'] = cacheHitSeconds(model, 'vae_decoder', 'vae', cfg);
  const z = latent ?? randn([1, 4, 64, 64], 8);
  let decoded: Tensor<'float32'> | undefined;
  const dec = await timeCalls('VAE decode 64x64 -> 512x512', async () => { decoded = await model.decodeLatent(z); }, args.calls);
  figures['vae_decode_s'] = dec.mean_s;
  figures['vae_decode_timing'] = dec;
  figures['vae_finite'] = latent !== undefined && allFinite(latent) && decoded !== undefined && allFinite(decoded);
  await model.dispose();
  figures['rss_vae_gb'] = round(maxRssGb(), 2);
  return figures;
}

function unetInputs(batch: number): { sample: Tensor<'float32'>; encoderHiddenStates: Tensor<'float32'> } {
  const ehs = randn([batch, 77, 768], 11);
  for (let i = 0; i < ehs.data.length; i++) ehs.data[i] = ehs.data[i]! * 0.5;
  return { sample: randn([batch, 4, 64, 64], 10), encoderHiddenStates: ehs };
}

async function openUNet(args: Args, clock: StatusClock, memoryArena: boolean) {
  const model = openModel(args, clock, { memoryArena });
  const sites = defaultE4ESites(model.unetConfig);
  const runner = await model.unet({ freeu: true, e4eSites: sites });
  const open = clock.split();
  const hit = cacheHitSeconds(model, 'unet_freeu_e4e', 'unet', { config: model.unetConfig, freeu: officialFreeU(model.unetConfig), sites });
  return { model, runner, open, hit, sites };
}

async function phaseUNet(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const { model, runner, open, hit, sites } = await openUNet(args, clock, true);
  const figures: Figures = { unet_graph: open, unet_cache_hit_s: hit, e4e_sites: sites.length };
  let finite = true;
  for (const batch of [1, 2]) {
    const inputs = unetInputs(batch);
    const timing = await timeCalls(`UNet batch ${batch} (FreeU, e4e off)`, async () => {
      const r = await runner.call({ ...inputs, timestep: 501, e4e: { mode: 'off', slots: [0, 0, 0, 0, 0, 0] } });
      finite &&= allFinite(r.noise);
    }, args.calls);
    figures[`unet_b${batch}_s`] = timing.mean_s;
    figures[`unet_b${batch}_min_s`] = timing.min_s;
    figures[`unet_b${batch}_timing`] = timing;
    figures[`rss_unet_after_b${batch}_gb`] = round(maxRssGb(), 2);
  }
  figures['unet_finite'] = finite;
  await model.dispose();
  return figures;
}

async function phaseUNetB6(args: Args): Promise<Figures> {
  const clock = new StatusClock();
  const { model, runner, open } = await openUNet(args, clock, args.b6Arena);
  const figures: Figures = { unet_b6_graph: open, unet_b6_arena: args.b6Arena, rss_b6_after_session_gb: round(maxRssGb(), 2) };
  const inputs = unetInputs(6);
  const slots = slotsInput(OFFICIAL_CFG_SLOTS);
  let finite = true;
  let matched = 0;
  const offCpu: number[] = [];
  const onCpu: number[] = [];
  const call = async (mode: 'off' | 'match'): Promise<number> => {
    (globalThis as { gc?: () => void }).gc?.();
    const c = process.cpuUsage();
    const t = performance.now();
    const r = await runner.call({ ...inputs, timestep: 501, e4e: { mode, slots } });
    const s = (performance.now() - t) / 1000;
    (mode === 'off' ? offCpu : onCpu).push(cpuSeconds(c));
    finite &&= allFinite(r.noise);
    if (mode === 'match') matched = Object.values(r.matches).reduce((n, m) => n + m.filter((x) => x >= 0n).length, 0);
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
    first_s: round(warm), off_s: off.map((x) => round(x)), match_s: on.map((x) => round(x)),
    off_cpu_s: offCpu.map((x) => round(x)), match_cpu_s: onCpu.map((x) => round(x)),
  };
  figures['unet_b6_matched_tokens'] = matched;
  figures['unet_b6_finite'] = finite;
  figures['peak_rss_b6_gb'] = round(maxRssGb(), 2);
  await model.dispose();
  return figures;
}

async function runPhase(args: Args): Promise<void> {
  const phase = args.phase!;
  const figures = phase === 'text' ? await phaseText(args)
    : phase === 'vae' ? await phaseVae(args)
      : phase === 'unet' ? await phaseUNet(args)
        : await phaseUNetB6(args);
  figures[`rss_${phase}_peak_gb`] = round(maxRssGb(), 2);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(figures)}\n`);
}

function runChild(args: Args, phase: Phase): Promise<Figures> {
  const argv = ['--expose-gc', fileURLToPath(import.meta.url), '--phase', phase, '--model-dir', args.modelDir, '--graph-dir', args.graphDir,
    '--calls', String(args.calls)];
  if (args.threads !== undefined) argv.push('--threads', String(args.threads));
  if (args.b6Arena) argv.push('--b6-arena');
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line !== undefined) resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as Figures);
      else {
        log(`phase ${phase} failed (exit ${code ?? signal})`);
        resolvePromise({ [`${phase}_error`]: `exit ${code ?? signal}` });
      }
    });
  });
}

// ------------------------------------------------------------------------------------------------ self-check

function compareWithFile(label: string, specs: readonly WeightSpec[], file: string): string[] {
  const st = SafetensorsFile.open(file);
  const problems: string[] = [];
  try {
    const want = new Map(specs.map((s) => [s.name, s]));
    for (const name of st.names()) {
      const s = want.get(name);
      const info = st.info(name);
      if (s === undefined) problems.push(`${label}: ${name} ${JSON.stringify(info.dims)} is in the file but not listed`);
      else if (JSON.stringify(s.dims) !== JSON.stringify(info.dims) || s.dtype !== info.dtype) {
        problems.push(`${label}: ${name}: listed ${s.dtype}${JSON.stringify(s.dims)}, file ${info.dtype}${JSON.stringify(info.dims)}`);
      }
      want.delete(name);
    }
    for (const name of want.keys()) problems.push(`${label}: ${name} is listed but not in the file`);
  } finally {
    st.close();
  }
  return problems;
}

async function selfCheck(): Promise<void> {
  const problems = [
    ...compareWithFile('unet', unetWeights(loadUNetConfig(join(TINY_DIR, 'unet', 'config.json'))), join(TINY_DIR, 'unet', 'diffusion_pytorch_model.safetensors')),
    ...compareWithFile('vae', vaeWeights(loadVaeConfig(join(TINY_DIR, 'vae', 'config.json'))), join(TINY_DIR, 'vae', 'diffusion_pytorch_model.safetensors')),
    ...compareWithFile('text_encoder', clipTextWeights(loadClipTextConfig(join(TINY_DIR, 'text_encoder', 'config.json'))), join(TINY_DIR, 'text_encoder', 'model.safetensors')),
  ];
  for (const p of problems) console.log(`  MISMATCH ${p}`);
  console.log(`tiny golden model vs weight list: ${problems.length === 0 ? 'names, shapes and dtypes identical' : `${problems.length} mismatches`}`);

  const sd = {
    unet: countParameters(unetWeights(loadUNetConfig(join(CONFIG_DIR, 'unet', 'config.json')))),
    vae: countParameters(vaeWeights(loadVaeConfig(join(CONFIG_DIR, 'vae', 'config.json')))),
    text_encoder: countParameters(clipTextWeights(loadClipTextConfig(join(CONFIG_DIR, 'text_encoder', 'config.json')))),
  };
  // Parameter counts of the real SD-1.5 checkpoints (diffusers num_parameters()).
  const known = { unet: 859_520_964, vae: 83_653_863, text_encoder: 123_060_480 };
  let countsOk = true;
  for (const k of ['unet', 'vae', 'text_encoder'] as const) {
    const ok = sd[k] === known[k];
    countsOk &&= ok;
    console.log(`SD-1.5 ${k}: ${sd[k].toLocaleString('en-US')} parameters (real checkpoint: ${known[k].toLocaleString('en-US')}) ${ok ? 'ok' : 'MISMATCH'}`);
  }

  // A random tiny model from the list must build through our graph builders (which check every weight both ways).
  const tmp = mkdtempSync(join(tmpdir(), 'e4e-bench-selfcheck-'));
  let buildsOk = false;
  try {
    ensureRandomModel(join(tmp, 'model'), TINY_DIR, TOKENIZER_DIR);
    const model = StableDiffusionModel.open(join(tmp, 'model'), { cacheDir: join(tmp, 'graphs') });
    const text = await model.encodeText(['a cat']);
    const latent = await model.encodeImage(randn([1, 3, 128, 128], 3));
    const image = await model.decodeLatent(latent);
    const runner = await model.unet({ freeu: true, e4eSites: defaultE4ESites(model.unetConfig) });
    const b = 6;
    const r = await runner.call({
      sample: randn([b, 4, 16, 16], 4), timestep: 10, encoderHiddenStates: randn([b, 77, model.textConfig.hiddenSize], 5),
      e4e: { mode: 'match', slots: slotsInput(OFFICIAL_CFG_SLOTS) },
    });
    await model.dispose();
    buildsOk = [text, latent, image, r.noise].every(allFinite);
    console.log(`random tiny model builds and runs (text, vae encode/decode, unet e4e match): ${buildsOk ? 'ok' : 'NON-FINITE OUTPUT'}`);
  } catch (err) {
    console.log(`random tiny model FAILED to build/run: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (problems.length > 0 || !countsOk || !buildsOk) process.exitCode = 1;
}

// ------------------------------------------------------------------------------------------------ report

function fmt(x: unknown, unit = ''): string {
  return typeof x === 'number' ? `${x.toFixed(x < 10 ? 2 : 1)}${unit}` : x === null || x === undefined ? '-' : String(x);
}

function report(all: Figures, args: Args): void {
  const g = (k: string): unknown => all[k];
  const graph = (k: string): { graph_s?: number; built?: boolean; build_s?: number | null; session_s?: number } => (all[k] ?? {}) as never;
  const rows: [string, string][] = [];
  const b6G = graph('unet_b6_graph');
  rows.push(['model generation', all['generated'] === true ? `${fmt(g('generation_s'), ' s')} (this run)` : 'already present']);
  for (const [label, key, hitKey] of [
    ['UNet (FreeU + e4e)', 'unet_graph', 'unet_cache_hit_s'], ['VAE encoder', 'vae_encoder_graph', 'vae_encoder_cache_hit_s'],
    ['VAE decoder', 'vae_decoder_graph', 'vae_decoder_cache_hit_s'], ['text encoder', 'text_graph', 'text_cache_hit_s'],
  ] as const) {
    const gr = graph(key);
    if (gr.session_s === undefined) continue;
    rows.push([`${label} graph build + save`, gr.built === true ? fmt(gr.graph_s, ' s') : `- (cached; --rebuild to measure)`]);
    rows.push([`${label} graph cache hit`, gr.built === false ? `${fmt(gr.graph_s, ' s')} (fresh process)` : `${fmt(g(hitKey), ' s')} (same process)`]);
    rows.push([`${label} session creation`, fmt(gr.session_s, ' s')]);
  }
  if (b6G.session_s !== undefined) {
    rows.push(['UNet graph cache hit (batch-6 process)', b6G.built === false ? fmt(b6G.graph_s, ' s') : '-']);
    rows.push([`UNet session creation, arena ${all['unet_b6_arena'] === true ? 'ON' : 'off'}`, fmt(b6G.session_s, ' s')]);
  }
  const meanMin = (mean: string, min: string): string => `${fmt(g(mean), ' s')} mean, ${fmt(g(min), ' s')} fastest`;
  rows.push(['UNet 512x512 batch 1', meanMin('unet_b1_s', 'unet_b1_min_s')]);
  rows.push(['UNet 512x512 batch 2', meanMin('unet_b2_s', 'unet_b2_min_s')]);
  rows.push([`UNet 512x512 batch 6 (arena ${all['unet_b6_arena'] === true ? 'ON' : 'off'})`, meanMin('unet_b6_s', 'unet_b6_min_s')]);
  rows.push(['UNet batch 6, e4e match ON', meanMin('unet_b6_match_s', 'unet_b6_match_min_s')]);
  rows.push(['matching overhead', `${fmt(g('match_overhead_pct'), ' %')} fastest vs fastest (${fmt(g('match_overhead_mean_pct'), ' %')} of means, ${fmt(g('match_overhead_cpu_pct'), ' %')} CPU time)`]);
  rows.push(['VAE encode 512x512', fmt(g('vae_encode_s'), ' s')]);
  rows.push(['VAE decode 512x512', fmt(g('vae_decode_s'), ' s')]);
  rows.push(['text encoder (1 prompt)', fmt(g('text_s'), ' s')]);
  rows.push(['peak RSS, batch-6 phase', fmt(g('peak_rss_b6_gb'), ' GB')]);
  rows.push(['peak RSS, batch 1/2 phase (arena on)', fmt(g('rss_unet_peak_gb'), ' GB')]);
  rows.push(['peak RSS, any phase', fmt(g('peak_rss_gb'), ' GB')]);
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log('');
  console.log(`eye4eye bench: SD-1.5 shapes, random weights, onnxruntime-node ${ORT_VERSION}, threads ${args.threads ?? 'default'}`);
  console.log('-'.repeat(width + 30));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log('-'.repeat(width + 30));
  const load = Number(all['loadavg_1m_start'] ?? 0);
  if (load > 0.5) console.log(`note: 1-minute load average ${load.toFixed(2)} before the bench on ${String(all['cpus'])} CPUs: other processes competed for the cores, timings are pessimistic`);
  const targets: Record<string, boolean | null> = {};
  for (const [key, t] of Object.entries(TARGETS)) {
    const v = all[key];
    const met = typeof v === 'number' ? v <= t.max : null;
    targets[key] = met;
    console.log(`target ${t.label.padEnd(32)} ${met === null ? 'not measured' : met ? `MET (${fmt(v)})` : `MISSED (${fmt(v)})`}`);
  }
  all['targets_met'] = targets;
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.phase !== undefined) return runPhase(args);
  if (args.selfCheck) return selfCheck();

  log(`model folder ${args.modelDir}; graph cache ${args.graphDir}`);
  if (args.rebuild && existsSync(args.graphDir)) {
    log('--rebuild: clearing the bench graph cache');
    rmSync(args.graphDir, { recursive: true, force: true });
  }
  const sentinelExists = existsSync(join(args.modelDir, '.bench-complete.json'));
  if (!sentinelExists) {
    let probe = args.modelDir;
    while (!existsSync(probe)) probe = dirname(probe);
    const fs = statfsSync(probe);
    const free = (fs.bavail * fs.bsize) / GIB;
    if (free < 4.5) throw new Error(`generating the random SD-1.5 model needs ~4.5 GiB free under ${probe}, only ${free.toFixed(1)} GiB left (set E4E_CACHE_DIR or --model-dir)`);
  }
  const gen = ensureRandomModel(args.modelDir, CONFIG_DIR, TOKENIZER_DIR, log);
  const all: Figures = {
    loadavg_1m_start: round(loadavg()[0]!, 2), cpus: availableParallelism(),
    onnxruntime: ORT_VERSION, threads: args.threads ?? 'default', generated: gen.generated, generation_s: round(gen.seconds, 1),
    parameters: gen.parameters,
  };
  let phases: Phase[] = [...PHASES];
  if (args.only === 'text') phases = ['text'];
  if (args.only === 'vae') phases = ['vae'];
  if (args.only === 'unet') phases = ['unet', 'unet_b6'];
  if (args.quick) phases = phases.filter((p) => p !== 'unet_b6');
  for (const phase of phases) {
    log(`phase ${phase}`);
    Object.assign(all, await runChild(args, phase));
  }
  const rss = Object.entries(all).filter(([k, v]) => /^rss_.*_peak_gb$/.test(k) && typeof v === 'number').map(([, v]) => v as number);
  all['peak_rss_gb'] = rss.length > 0 ? Math.max(...rss) : round(maxRssGb(), 2);
  type GraphFigures = { graph_s?: number; session_s?: number; built?: boolean } | undefined;
  const unetG = all['unet_graph'] as GraphFigures;
  const b6G = all['unet_b6_graph'] as GraphFigures;
  // build_s: key + build + save of the UNet graph when this run built it (null: it came from the cache).
  all['build_s'] = unetG?.built === true ? unetG.graph_s ?? null : b6G?.built === true ? b6G.graph_s ?? null : null;
  // cache_hit_s: the graph obtained from the cache in a fresh process (code fingerprint, weights headers, entry check).
  all['cache_hit_s'] = unetG?.built === false ? unetG.graph_s ?? null : b6G?.built === false ? b6G.graph_s ?? null : all['unet_cache_hit_s'] ?? null;
  all['session_s'] = unetG?.session_s ?? b6G?.session_s ?? null;
  all['total_s'] = round((performance.now() - started) / 1000, 1);
  report(all, args);
  console.log(JSON.stringify(all));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (/^(unknown argument|--)/.test(err.message) ? `bench: ${err.message}` : err.stack ?? err.message) : String(err));
  process.exit(1);
});
