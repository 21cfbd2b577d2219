/**
 * Compute figures against this machine's GEMM rate (see bench/README.md, "FLOPs and the GEMM rate"):
 *
 *   - `gemm` phase (run first): a float32 MatMul [4096, 4096] x [4096, 4096] built with our GraphBuilder, through
 *     src/runtime/session.ts with the bench's threads; warm-up, then timed calls; GFLOP/s = 2 x 4096^3 / time;
 *   - `count` phase (run last): the FLOPs of each measured call, counted by onnxruntime's profiler (bench/flops.ts) on
 *     the cached graphs at the same input shapes and processor feeds as the timed calls; the counts are kept in
 *     `<graph-dir>/flop-counts.json` under the graph's cache key, so a graph is profiled once;
 *   - `rateFigures`: for every compute figure its GFLOP, the GFLOP/s it reached, the ratio to the GEMM rate and the
 *     time the GEMM rate would need (`ideal_s`).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { officialFreeU } from '../src/models/unet/freeu.js';
import { e4eFeeds, injectionSlots } from '../src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from '../src/methods/eye-for-an-eye/index.js';
import { GraphBuilder, Scope } from '../src/onnx/graph-builder.js';
import * as ops from '../src/onnx/ops.js';
import { modelToBytes } from '../src/onnx/save.js';
import { Session, ORT_VERSION, type Feeds } from '../src/runtime/session.js';
import type { StableDiffusionModel } from '../src/runtime/stable-diffusion.js';
import { tensorFromJson, type TensorJson } from '../src/runtime/tensor-json.js';
import { UNetRunner, type UNetGraphInfo } from '../src/runtime/unet-runner.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { log, randn, round, StatusClock, timeCalls, type Args, type Figures, type Phase } from './common.js';
import { PROFILE_OPTIMIZATION, profiledCounts, type FlopCount } from './flops.js';
import { openModel, unetInputs } from './phases.js';

// ------------------------------------------------------------------------------------------------ gemm

export const GEMM_N = 4096;
export const GEMM_FLOP = 2 * GEMM_N ** 3;
/** Timed GEMM calls: at least this many (one takes ~1 s on 2 cores), or --calls. */
const GEMM_MIN_CALLS = 5;

/** Y = A B: A [n, n] a graph input, B [n, n] a weight (an initializer, pre-packed by onnxruntime as the models' weights are). */
export function gemmModel(n = GEMM_N): Uint8Array {
  const g = new GraphBuilder('gemm');
  const a = g.input('a', 'float32', [n, n]);
  const b = randn([n, n], 3);
  g.output(ops.matMul(new Scope(g, '/gemm'), a, ops.constTensor(g, b.data, [n, n])), 'y', 'float32', [n, n]);
  return modelToBytes(g);
}

export async function phaseGemm(args: Args): Promise<Figures> {
  const session = await Session.create(gemmModel(), { name: 'gemm', ...(args.threads === undefined ? {} : { threads: args.threads }) });
  const a = randn([GEMM_N, GEMM_N], 4);
  let y: Tensor | undefined;
  const timing = await timeCalls(
    `MatMul ${GEMM_N}x${GEMM_N}x${GEMM_N} float32`,
    async () => {
      y = (await session.run({ a }))['y'];
    },
    Math.max(GEMM_MIN_CALLS, args.calls),
  );
  await session.dispose();
  const gflop = GEMM_FLOP / 1e9;
  log(`GEMM: ${(gflop / timing.min_s).toFixed(1)} GFLOP/s fastest, ${(gflop / timing.mean_s).toFixed(1)} mean`);
  return {
    gemm_shape: [GEMM_N, GEMM_N, GEMM_N],
    gemm_gflop: round(gflop, 1),
    gemm_gflops: round(gflop / timing.min_s, 1),
    gemm_gflops_mean: round(gflop / timing.mean_s, 1),
    gemm_timing: timing,
    gemm_output_ok: y !== undefined && y.dims[0] === GEMM_N && y.dims[1] === GEMM_N,
  };
}

// ------------------------------------------------------------------------------------------------ count

/** What the count phase keeps of a FlopCount (and the JSON shows). */
export interface CountFigure {
  gflop: number;
  by_op_gflop: Record<string, number>;
  /** Node runs of ops that are not counted (elementwise, normalisation, ...), by op. */
  ignored_nodes: Record<string, number>;
  /** Counted ops whose shapes could not be read: empty in a good count. */
  unreadable: string[];
  /** The call that was profiled. */
  call: string;
  /** Taken from flop-counts.json (profiled by an earlier run). */
  cached: boolean;
}

export function countFigure(c: FlopCount, call: string, cached: boolean): CountFigure {
  return {
    gflop: round(c.flops / 1e9, 2),
    by_op_gflop: Object.fromEntries(Object.entries(c.byOp).map(([op, o]) => [op, round(o.flops / 1e9, 2)])),
    ignored_nodes: c.ignored,
    unreadable: c.unreadable,
    call,
    cached,
  };
}

interface CountJob {
  /** The figure it counts for (`unet_b1`, `vae_encode`, ...). */
  figure: string;
  /** The call, in words (shapes, processor mode): part of the cache key. */
  call: string;
  /** The one session run to profile (the same call as the timed one). */
  run: (session: Session) => Promise<unknown>;
}

interface GraphJobs {
  name: string;
  component: 'unet' | 'vae' | 'text_encoder';
  config: unknown;
  jobs: CountJob[];
  /** Feeds for the UNet need the runner (neutral processor inputs, sites): made from the cache entry's meta. */
  unet?: boolean;
}

/** The cache request of the bench's UNet: mirrors StableDiffusionModel.unet for e4eUNetVariant (FreeU on). */
function unetRequest(model: StableDiffusionModel): { name: string; config: unknown } {
  const variant = e4eUNetVariant(model.unetConfig);
  return { name: 'unet_freeu_e4e', config: { config: model.unetConfig, freeu: officialFreeU(model.unetConfig), processors: variant.processors?.key ?? null } };
}

/** Which figures each measured phase needs counted. */
export function countedFigures(phases: readonly Phase[]): Set<string> {
  const needs: Partial<Record<Phase, string[]>> = {
    text: ['text'],
    vae: ['vae_encode', 'vae_decode'],
    unet: ['unet_b1', 'unet_b2'],
    unet_b6: ['unet_b6', 'unet_b6_match'],
    e2e: ['unet_b2', 'unet_b6_match'], // inversion step, transfer step
  };
  return new Set(phases.flatMap((p) => needs[p] ?? []));
}

export const COUNTS_FILE = 'flop-counts.json';

function readCounts(file: string): Record<string, FlopCount> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, FlopCount>;
  } catch {
    return {};
  }
}

export async function phaseCount(args: Args): Promise<Figures> {
  const want = countedFigures(args.countFor);
  const model = openModel(args, new StatusClock());
  const file = join(args.graphDir, COUNTS_FILE);
  // Every stored count is kept in the file; --recount only stops this run from using them.
  const stored = readCounts(file);
  const known = args.recount ? {} : stored;
  const counts: Record<string, CountFigure> = {};
  const image = randn([1, 3, 512, 512], 7);
  const unet = unetRequest(model);
  const slots = injectionSlots(true);
  let unetInfo: UNetGraphInfo | undefined; // from the cache entry, before the UNet's jobs run
  // The calls of phaseUNet (processors neutral: mode off) and phaseUNetB6 (off, and match with the official CFG slots).
  // e4e 'neutral': no processor feeds (phaseUNet); 'off' / 'match': e4eFeeds of that mode (phaseUNetB6).
  const unetJob = (figure: string, batch: number, e4e: 'neutral' | 'off' | 'match'): CountJob => ({
    figure,
    call: `sample [${batch}, 4, 64, 64], encoder_hidden_states [${batch}, 77, 768], e4e ${e4e === 'match' ? 'match, official CFG slots, no masks' : e4e}`,
    run: (session) => {
      const runner = new UNetRunner(session, unetInfo!);
      const feeds = e4e === 'neutral' ? undefined : e4eFeeds({ mode: e4e, slots }, runner.info.processed, batch);
      return runner.call({ ...unetInputs(batch), timestep: 501, feeds });
    },
  });
  const run =
    (feeds: () => Feeds) =>
    (session: Session): Promise<unknown> =>
      session.run(feeds());
  const graphs: GraphJobs[] = [
    {
      name: 'text_encoder',
      component: 'text_encoder',
      config: model.textConfig,
      jobs: [
        {
          figure: 'text',
          call: 'input_ids [1, 77] (1 prompt)',
          run: run(() => ({ input_ids: model.tokenize(['a photograph of an astronaut riding a horse']) })),
        },
      ],
    },
    {
      name: 'vae_encoder',
      component: 'vae',
      config: model.vaeConfig,
      jobs: [{ figure: 'vae_encode', call: 'sample [1, 3, 512, 512]', run: run(() => ({ sample: image })) }],
    },
    {
      name: 'vae_decoder',
      component: 'vae',
      config: model.vaeConfig,
      jobs: [{ figure: 'vae_decode', call: 'latent [1, 4, 64, 64]', run: run(() => ({ latent: randn([1, 4, 64, 64], 8) })) }],
    },
    {
      ...unet,
      component: 'unet',
      unet: true,
      jobs: [unetJob('unet_b1', 1, 'neutral'), unetJob('unet_b2', 2, 'neutral'), unetJob('unet_b6', 6, 'off'), unetJob('unet_b6_match', 6, 'match')],
    },
  ];
  for (const gr of graphs) {
    const jobs = gr.jobs.filter((j) => want.has(j.figure));
    if (jobs.length === 0) continue;
    const w = model.componentWeights(gr.component);
    let entry;
    try {
      entry = model.cache.obtain({
        name: gr.name,
        config: gr.config,
        weightFiles: w.files,
        build: () => {
          throw new Error('not in the graph cache');
        },
      });
    } catch {
      log(`count: ${gr.name} is not in the graph cache (its phase failed?): not counted`);
      continue;
    }
    const keyOf = (j: CountJob): string => `${gr.name}-${entry.key} | ${j.call} | onnxruntime ${ORT_VERSION}, optimization ${PROFILE_OPTIMIZATION}`;
    const todo = jobs.filter((j) => known[keyOf(j)] === undefined);
    for (const j of jobs.filter((j) => !todo.includes(j))) counts[j.figure] = countFigure(known[keyOf(j)]!, j.call, true);
    if (todo.length === 0) continue;
    if (gr.unet === true) {
      const meta = entry.meta as { sites: UNetGraphInfo['sites']; processed: UNetGraphInfo['processed']; neutralFeeds: Record<string, TensorJson> };
      // As StableDiffusionModel.unet makes it from the entry's meta.
      unetInfo = {
        sites: meta.sites,
        processed: meta.processed,
        neutralFeeds: Object.fromEntries(Object.entries(meta.neutralFeeds).map(([n, t]) => [n, tensorFromJson(t)])),
      };
    }
    const t = performance.now();
    log(`count: profiling ${gr.name}: ${todo.map((j) => j.figure).join(', ')} (one call each, optimization ${PROFILE_OPTIMIZATION})`);
    const results = await profiledCounts(
      entry.modelPath,
      { name: `${gr.name} (profiled)`, memoryArena: false, ...(args.threads === undefined ? {} : { threads: args.threads }) },
      todo.map((j) => j.run),
    );
    log(`count: ${gr.name} profiled in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    todo.forEach((j, i) => {
      const c = results[i]!;
      known[keyOf(j)] = c;
      stored[keyOf(j)] = c;
      counts[j.figure] = countFigure(c, j.call, false);
      log(`count: ${j.figure} = ${(c.flops / 1e9).toFixed(1)} GFLOP${c.unreadable.length > 0 ? ` (${c.unreadable.length} node runs UNREADABLE)` : ''}`);
    });
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(stored, null, 1));
    renameSync(tmp, file);
  }
  await model.dispose();
  return { flop_counts: counts };
}

// ------------------------------------------------------------------------------------------------ ratios

export interface RateSpec {
  /** Prefix of the figures made (`unet_b1` -> unet_b1_gflop, _gflops, _gemm_ratio, _ideal_s). */
  figure: string;
  label: string;
  /** The count (flop_counts key) of the call the time is of. */
  count: string;
  /** The measured time used, and what it is. */
  seconds: (all: Figures) => unknown;
  time: string;
}

const key =
  (k: string) =>
  (all: Figures): unknown =>
    all[k];
const fastest =
  (timingKey: string) =>
  (all: Figures): unknown =>
    (all[timingKey] as { min_s?: unknown } | undefined)?.min_s;

/** Every compute figure of the bench, with its count and its time. */
export const RATE_SPECS: readonly RateSpec[] = [
  { figure: 'unet_b1', label: 'UNet batch 1', count: 'unet_b1', seconds: key('unet_b1_min_s'), time: 'fastest call' },
  { figure: 'unet_b2', label: 'UNet batch 2', count: 'unet_b2', seconds: key('unet_b2_min_s'), time: 'fastest call' },
  { figure: 'unet_b6', label: 'UNet batch 6, e4e off', count: 'unet_b6', seconds: key('unet_b6_min_s'), time: 'fastest call' },
  { figure: 'unet_b6_match', label: 'UNet batch 6, e4e match', count: 'unet_b6_match', seconds: key('unet_b6_match_min_s'), time: 'fastest call' },
  { figure: 'vae_encode', label: 'VAE encode 512x512', count: 'vae_encode', seconds: fastest('vae_encode_timing'), time: 'fastest call' },
  { figure: 'vae_decode', label: 'VAE decode 512x512', count: 'vae_decode', seconds: fastest('vae_decode_timing'), time: 'fastest call' },
  { figure: 'text', label: 'text encoder, 77 tokens', count: 'text', seconds: fastest('text_timing'), time: 'fastest call' },
  { figure: 'sam_encoder', label: 'SAM-HQ ViT-L encoder 1024x1024', count: 'sam_encoder', seconds: fastest('sam_encoder_timing'), time: 'fastest call' },
  { figure: 'sam_decoder', label: 'SAM-HQ decoder (box prompt)', count: 'sam_decoder', seconds: fastest('sam_decoder_timing'), time: 'fastest call' },
  // The e2e steps run the same UNet graph: inversion at batch 2 with neutral processors, transfer at batch 6 (the
  // median step of the reduced schedule is a match step).
  { figure: 'e2e_inversion_step', label: 'e2e inversion step (batch 2)', count: 'unet_b2', seconds: key('e2e_inversion_step_s'), time: 'median step' },
  {
    figure: 'e2e_transfer_step',
    label: 'e2e transfer step (batch 6, match)',
    count: 'unet_b6_match',
    seconds: key('e2e_transfer_step_s'),
    time: 'median step',
  },
];

/**
 * Adds, for every compute figure measured in this run and counted: `<figure>_gflop` (counted), `<figure>_gflops` (GFLOP /
 * time), `<figure>_gemm_ratio` (that / gemm_gflops) and `<figure>_ideal_s` (GFLOP / gemm_gflops); and
 * `match_flop_overhead_pct`, the FLOPs matching adds to a batch-6 call.
 */
export function rateFigures(all: Figures): void {
  // The sam phase counts its own calls (bench/sam.ts).
  const counts: Record<string, CountFigure | undefined> = {
    ...(all['flop_counts'] as Record<string, CountFigure> | undefined),
    ...(all['sam_flop_counts'] as Record<string, CountFigure> | undefined),
  };
  const gemm = typeof all['gemm_gflops'] === 'number' ? all['gemm_gflops'] : undefined;
  for (const spec of RATE_SPECS) {
    const gflop = counts[spec.count]?.gflop;
    const s = spec.seconds(all);
    if (gflop === undefined || typeof s !== 'number' || !(s > 0)) continue; // not counted, or not measured in this run
    all[`${spec.figure}_gflop`] = gflop;
    const rate = gflop / s;
    all[`${spec.figure}_gflops`] = round(rate, 1);
    if (gemm === undefined) continue;
    all[`${spec.figure}_gemm_ratio`] = round(rate / gemm, 3);
    all[`${spec.figure}_ideal_s`] = round(gflop / gemm, 3);
  }
  const off = counts['unet_b6']?.gflop;
  const on = counts['unet_b6_match']?.gflop;
  if (off !== undefined && on !== undefined) all['match_flop_overhead_pct'] = round(((on - off) / off) * 100, 2);
}
