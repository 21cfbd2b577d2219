/**
 * `npm run bench`: SD-1.5-size speed and memory figures on random weights (see bench/README.md).
 *
 * The parent process makes sure the random model exists, then runs each phase (text, vae, unet batch 1/2, unet
 * batch 6, e2e transfer) in its own child process, so every phase starts from a clean heap and its peak RSS is its
 * own. The last line printed is one JSON object with every figure.
 *
 * Files: common.ts (paths, arguments' type, timing helpers), phases.ts (component phases), e2e.ts (the whole
 * transfer through the library API), report.ts (the table), self-check.ts (--self-check).
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync, statfsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../src/runtime/model-cache.js';
import { EXECUTION_PROVIDERS, ORT_VERSION, type ExecutionProvider } from '../src/runtime/session.js';
import { PRECISIONS, type Precision } from '../src/onnx/target.js';
import { CONFIG_DIR, GIB, log, maxRssGb, PHASES, round, started, TOKENIZER_DIR, type Args, type Figures, type Phase } from './common.js';
import { phaseE2E } from './e2e.js';
import { phaseSam } from './sam.js';
import { phaseText, phaseUNet, phaseUNetB6, phaseVae } from './phases.js';
import { ensureRandomModel } from './random-model.js';
import { countedFigures, phaseCount, phaseGemm, rateFigures } from './rates.js';
import { report } from './report.js';
import { selfCheck } from './self-check.js';

const RESULT_PREFIX = '@@bench-result ';

function parseArgs(argv: readonly string[]): Args {
  const cacheRoot = defaultCacheDir();
  const args: Args = {
    modelDir: join(cacheRoot, 'bench-models', 'sd15-random'),
    graphDir: join(cacheRoot, 'bench-graphs'),
    quick: false,
    only: undefined,
    selfCheck: false,
    rebuild: false,
    threads: undefined,
    calls: 2,
    phase: undefined,
    b6Arena: false,
    countFor: [],
    recount: false,
    device: 'cpu',
    precision: 'fp32',
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--model-dir':
        args.modelDir = resolve(value(i, a));
        i++;
        break;
      case '--graph-dir':
        args.graphDir = resolve(value(i, a));
        i++;
        break;
      case '--quick':
        args.quick = true;
        break;
      case '--self-check':
        args.selfCheck = true;
        break;
      case '--rebuild':
        args.rebuild = true;
        break;
      case '--b6-arena':
        args.b6Arena = true;
        break;
      case '--recount':
        args.recount = true;
        break;
      case '--count-for':
        args.countFor = value(i, a)
          .split(',')
          .filter((p) => p !== '') as Phase[];
        i++;
        break;
      case '--only': {
        const v = value(i, a);
        i++;
        if (v !== 'unet' && v !== 'vae' && v !== 'text' && v !== 'e2e' && v !== 'gemm' && v !== 'sam')
          throw new Error(`--only takes unet, vae, text, e2e, sam or gemm, not ${v}`);
        args.only = v;
        break;
      }
      case '--device': {
        const v = value(i, a);
        i++;
        if (!EXECUTION_PROVIDERS.includes(v as ExecutionProvider)) throw new Error(`--device takes ${EXECUTION_PROVIDERS.join(', ')}, not ${v}`);
        args.device = v as ExecutionProvider;
        break;
      }
      case '--precision': {
        const v = value(i, a);
        i++;
        if (!PRECISIONS.includes(v as Precision)) throw new Error(`--precision takes ${PRECISIONS.join(', ')}, not ${v}`);
        args.precision = v as Precision;
        break;
      }
      case '--threads':
        args.threads = Number(value(i, a));
        i++;
        break;
      case '--calls':
        args.calls = Math.max(1, Number(value(i, a)));
        i++;
        break;
      case '--phase': {
        const v = value(i, a) as Phase;
        i++;
        if (!PHASES.includes(v)) throw new Error(`unknown phase ${v}`);
        args.phase = v;
        break;
      }
      case '--help':
      case '-h':
        console.log(
          'usage: npm run bench -- [--quick] [--only unet|vae|text|e2e|sam|gemm] [--model-dir DIR] [--graph-dir DIR] [--rebuild] [--recount] [--threads N] [--calls N] [--b6-arena] [--device cpu|cuda|webgpu] [--precision fp32|fp16] [--self-check]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  return args;
}

async function runPhase(args: Args): Promise<void> {
  const phase = args.phase!;
  const run = { gemm: phaseGemm, text: phaseText, vae: phaseVae, unet: phaseUNet, unet_b6: phaseUNetB6, e2e: phaseE2E, sam: phaseSam, count: phaseCount }[
    phase
  ];
  const figures = await run(args);
  figures[`rss_${phase}_peak_gb`] = round(maxRssGb(), 2);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(figures)}\n`);
}

function runChild(args: Args, phase: Phase): Promise<Figures> {
  const argv = [
    '--expose-gc',
    fileURLToPath(import.meta.url),
    '--phase',
    phase,
    '--model-dir',
    args.modelDir,
    '--graph-dir',
    args.graphDir,
    '--calls',
    String(args.calls),
    '--device',
    args.device,
    '--precision',
    args.precision,
  ];
  if (args.threads !== undefined) argv.push('--threads', String(args.threads));
  if (args.b6Arena) argv.push('--b6-arena');
  if (phase === 'count') argv.push('--count-for', args.countFor.join(','));
  if (args.recount) argv.push('--recount');
  return new Promise((resolvePromise) => {
    // The count phase's profiled sessions: with onnxruntime's profiler on, glibc's adaptive mmap threshold keeps the
    // freed activations of a call in the heap (a profiled UNet batch-6 call peaked at 10.3 GB instead of 4.8 GB);
    // a fixed threshold returns them (4.0 GB). Only that child gets it: the measured phases run as the library does.
    const env = phase === 'count' ? { ...process.env, MALLOC_MMAP_THRESHOLD_: process.env['MALLOC_MMAP_THRESHOLD_'] ?? '131072' } : process.env;
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
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
  // The sam phase has its own random model (bench/sam.ts): --only sam does not need the SD one.
  const needsSd = args.only !== 'sam';
  const sentinelExists = existsSync(join(args.modelDir, '.bench-complete.json'));
  if (needsSd && !sentinelExists) {
    let probe = args.modelDir;
    while (!existsSync(probe)) probe = dirname(probe);
    const fs = statfsSync(probe);
    const free = (fs.bavail * fs.bsize) / GIB;
    if (free < 4.5)
      throw new Error(
        `generating the random SD-1.5 model needs ~4.5 GiB free under ${probe}, only ${free.toFixed(1)} GiB left (set E4E_CACHE_DIR or --model-dir)`,
      );
  }
  const gen = needsSd ? ensureRandomModel(args.modelDir, CONFIG_DIR, TOKENIZER_DIR, log) : { generated: false, seconds: 0, parameters: null };
  const all: Figures = {
    loadavg_1m_start: round(loadavg()[0]!, 2),
    cpus: availableParallelism(),
    onnxruntime: ORT_VERSION,
    threads: args.threads ?? 'default',
    device: args.device,
    precision: args.precision,
    generated: gen.generated,
    generation_s: round(gen.seconds, 1),
    parameters: gen.parameters,
  };
  // The measured phases; the GEMM rate comes first and the FLOP counts of the measured calls last.
  let measured: Phase[] = ['text', 'vae', 'unet', 'unet_b6', 'e2e', 'sam'];
  if (args.only === 'text') measured = ['text'];
  if (args.only === 'vae') measured = ['vae'];
  if (args.only === 'unet') measured = ['unet', 'unet_b6'];
  if (args.only === 'e2e') measured = ['e2e'];
  if (args.only === 'gemm') measured = [];
  if (args.only === 'sam') measured = ['sam'];
  if (args.quick && args.only !== 'e2e') measured = measured.filter((p) => p !== 'unet_b6' && p !== 'e2e' && p !== 'sam');
  args.countFor = measured;
  // The sam phase counts its own calls: no count phase (and no SD model) for --only sam.
  const phases: Phase[] = ['gemm', ...measured, ...(countedFigures(measured).size > 0 ? (['count'] as const) : [])];
  for (const phase of phases) {
    log(`phase ${phase}`);
    Object.assign(all, await runChild(args, phase));
  }
  const rss = Object.entries(all)
    // The measured phases only: gemm and count (a profiled second session) are the bench's own work.
    .filter(([k, v]) => /^rss_.*_peak_gb$/.test(k) && k !== 'rss_gemm_peak_gb' && k !== 'rss_count_peak_gb' && typeof v === 'number')
    .map(([, v]) => v as number);
  all['peak_rss_gb'] = rss.length > 0 ? Math.max(...rss) : round(maxRssGb(), 2);
  type GraphFigures = { graph_s?: number; session_s?: number; built?: boolean } | undefined;
  const unetG = all['unet_graph'] as GraphFigures;
  const b6G = all['unet_b6_graph'] as GraphFigures;
  // build_s: key + build + save of the UNet graph when this run built it (null: it came from the cache).
  all['build_s'] = unetG?.built === true ? (unetG.graph_s ?? null) : b6G?.built === true ? (b6G.graph_s ?? null) : null;
  // cache_hit_s: the graph obtained from the cache in a fresh process (code fingerprint, weights headers, entry check).
  all['cache_hit_s'] = unetG?.built === false ? (unetG.graph_s ?? null) : b6G?.built === false ? (b6G.graph_s ?? null) : (all['unet_cache_hit_s'] ?? null);
  all['session_s'] = unetG?.session_s ?? b6G?.session_s ?? null;
  rateFigures(all);
  all['total_s'] = round((performance.now() - started) / 1000, 1);
  all['loadavg_1m_end'] = round(loadavg()[0]!, 2);
  report(all, args);
  console.log(JSON.stringify(all));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (/^(unknown argument|--)/.test(err.message) ? `bench: ${err.message}` : (err.stack ?? err.message)) : String(err));
  process.exit(1);
});
