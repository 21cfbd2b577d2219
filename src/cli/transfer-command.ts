/**
 * `eye4eye transfer`: parse the flags (options-table.ts), run the library pipeline, write the pictures and run.json.
 * Exit codes: 0 done; 2 usage (unknown / missing / repeated option, malformed or out-of-range value); 130 interrupted
 * (Ctrl-C); 1 any other E4EError.
 *
 * Everything that needs no model is checked first: the options (ranges against the schedule), the images and masks,
 * the output folder (run-folder.ts: writable, not a file, room for the outputs, no other run's files) and the cache
 * (pipeline: used, or a stated run without caching). Files are written to temporary names and renamed; if anything
 * fails, what this run wrote is removed, and nothing else.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { AbortError, E4EError, InvalidParameterError } from '../errors.js';
import { adainIterations, featureIterations, structureCopyIterations } from '../methods/eye-for-an-eye/schedule.js';
import { DEFAULT_MODEL_ID, DEFAULT_SAM_MODEL_ID, obtainSamModel, type DownloadProgress } from '../pipeline/model-source.js';
import { openSamWeights } from '../models/sam/weights.js';
import { validateTransferOptions, type TransferOptions } from '../pipeline/options.js';
import { loadPipeline, prepareTransferInputs, type ProgressEvent, type TransferOutput, type TransferPipeline } from '../pipeline/pipeline.js';
import { resultFiles } from '../pipeline/result-files.js';
import { VERSION } from '../version.js';
import { ORT_VERSION } from '../runtime/session.js';
import { flagHelp, flagOf, optionsFromFlags, parseArgsSpec, REQUIRED_FLAGS, TRANSFER_CLI_OPTIONS, UsageError } from './options-table.js';
import { expectedOutputBytes, RunFolder } from './run-folder.js';

export const DEFAULT_OUT_DIR = './eye4eye-out';

export const TRANSFER_HELP = `  eye4eye transfer --structure FILE --appearance FILE --domain NAME [options]
    Appearance transfer (Eye-for-an-eye, or Cross-Image Attention with --method cia): the structure image's
    layout with the appearance image's look. Writes result.png, grid.png, correspondence.png, mask-*.png (when masks are given) and run.json to --out
    (a new or empty folder; --overwrite replaces an earlier run there).
${flagHelp()}`;

export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress bar) or not (one line per phase). */
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Free bytes on the output folder's disk (default: statfs); for tests. */
  freeBytes?: (dir: string) => number;
}

/** The package version, found by walking up from this file to eye4eye's package.json. */
function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '--:--';
  const r = Math.round(s);
  return `${Math.floor(r / 60)}:${String(r % 60).padStart(2, '0')}`;
}

/** Progress on stderr: a redrawn bar on a terminal, otherwise one line per finished phase. */
export function progressPrinter(io: CommandIo): (e: ProgressEvent) => void {
  const started = new Map<string, number>();
  return (e) => {
    const key = e.method === undefined ? e.phase : `${e.phase} (${e.method})`;
    if (!started.has(key)) started.set(key, performance.now());
    const done = e.step >= e.total;
    if (io.isTTY === true) {
      const width = 24;
      const filled = Math.round((width * e.step) / Math.max(e.total, 1));
      const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
      io.err(
        `\r${key.padEnd(16)} [${bar}] ${String(e.step).padStart(4)}/${e.total}  ETA ${formatSeconds(e.etaSeconds)}${e.cached === true ? ' (cached)' : ''}${done ? '\n' : ''}`,
      );
    } else if (done) {
      const seconds = (performance.now() - (started.get(key) ?? performance.now())) / 1000;
      io.err(`${key}: ${e.total}/${e.total}${e.cached === true ? ' (from the inversion cache)' : ''} in ${seconds.toFixed(1)} s\n`);
    }
  };
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

/** Model download progress on stderr: a redrawn bar with bytes and ETA on a terminal, otherwise one line per file. */
export function downloadPrinter(io: CommandIo, model: string): (p: DownloadProgress) => void {
  let started: { time: number; bytes: number } | undefined;
  let lastFile = -1;
  let lastDraw = 0;
  let finished = false;
  return (p) => {
    const now = performance.now();
    if (started === undefined) {
      started = { time: now, bytes: p.bytes };
      io.err(`eye4eye: downloading ${model} from the Hugging Face Hub: ${p.files} files, ${formatBytes(p.totalBytes)}\n`);
    }
    if (finished) return;
    const done = p.fileIndex === p.files - 1 && p.bytes >= p.totalBytes;
    const seconds = (now - started.time) / 1000;
    if (io.isTTY === true) {
      if (!done && p.fileIndex === lastFile && now - lastDraw < 100) return;
      lastDraw = now;
      const width = 24;
      const filled = Math.round((width * p.bytes) / Math.max(p.totalBytes, 1));
      const rate = (p.bytes - started.bytes) / Math.max(seconds, 1e-3);
      const eta = rate > 0 ? (p.totalBytes - p.bytes) / rate : undefined;
      io.err(
        `\r\x1b[2Kdownload [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}  ${p.fileIndex + 1}/${p.files} ${p.file}  ETA ${formatSeconds(done ? 0 : eta)}${done ? '\n' : ''}`,
      );
    } else if (p.fileIndex !== lastFile) {
      io.err(`download ${p.fileIndex + 1}/${p.files}: ${p.file}\n`);
    }
    lastFile = p.fileIndex;
    if (done) {
      finished = true;
      if (io.isTTY !== true) io.err(`download: ${p.files} files, ${formatBytes(p.totalBytes)} in ${seconds.toFixed(1)} s\n`);
    }
  };
}

function describeInput(source: unknown): string | undefined {
  return typeof source === 'string' ? resolve(source) : source === undefined ? undefined : '<buffer>';
}

/** The ranges as used, whether they were given or the defaults scaled to the schedule, and the iterations they hit. */
function scheduleRecord(options: TransferOptions, given: { featRange: boolean; adainRange: boolean }): unknown {
  const iterations = options.numSteps - options.skip;
  const feat = { start: options.featRange[0], end: options.featRange[1] };
  const adain = { start: options.adainRange[0], end: options.adainRange[1] };
  const from = (g: boolean): string => (g ? 'given' : 'default (the reference 100-step values, scaled to this schedule)');
  return {
    iterations,
    featRange: {
      range: options.featRange,
      from: from(given.featRange),
      iterations: featureIterations(iterations, feat) ?? null,
      structureCopyIterations: options.injection === 'match' ? structureCopyIterations(iterations, feat) : [],
    },
    adainRange: { range: options.adainRange, from: from(given.adainRange), iterations: adainIterations(iterations, adain) ?? null },
  };
}

export function runRecord(
  args: { structure: string; appearance: string; outDir: string; argv: readonly string[]; given: { featRange: boolean; adainRange: boolean } },
  options: TransferOptions,
  result: TransferOutput,
  files: readonly string[],
  command: 'transfer' | 'compare' = 'transfer',
): unknown {
  const m = result.metadata;
  return {
    tool: 'eye4eye',
    command,
    createdAt: new Date().toISOString(),
    commandLine: { argv: ['eye4eye', command, ...args.argv], cwd: process.cwd() },
    inputs: {
      structure: resolve(args.structure),
      appearance: resolve(args.appearance),
      structureMask: describeInput(options.structureMask),
      appearanceMask: describeInput(options.appearanceMask),
    },
    options: {
      ...options,
      structureMask: describeInput(options.structureMask),
      appearanceMask: describeInput(options.appearanceMask),
      cacheDir: m.cache.dir,
      hookSites: m.hookSites,
    },
    schedule: scheduleRecord(options, args.given),
    model: m.model,
    versions: { eye4eye: VERSION, onnxruntime: ORT_VERSION, node: process.version, sharp: sharp.versions.sharp, vips: sharp.versions.vips },
    timings: result.timings,
    cache: {
      dir: m.cache.dir,
      writable: m.cache.writable,
      ...(m.cache.notWritableReason === undefined ? {} : { notWritableReason: m.cache.notWritableReason }),
      inversion: { app: m.inversionCache.app, struct: m.inversionCache.struct },
      graphs: m.graphCache.map((g) => ({ name: g.name, hit: g.hit })),
    },
    sizes: { structure: m.structureSize, appearance: m.appearanceSize, working: m.workingSize, latent: m.latentSize },
    correspondence:
      result.matches === undefined
        ? null
        : { site: result.matches.site, iteration: result.matches.iteration, tokens: { width: result.matches.width, height: result.matches.height } },
    outDir: resolve(args.outDir),
    outputs: files,
  };
}

export function parseCommandLine(argv: readonly string[]): { values: Record<string, string | boolean | string[] | undefined> } {
  const spec = parseArgsSpec();
  // Not strict: the tokens are checked here, so each mistake is named from the token itself.
  const { values, tokens } = parseArgs({ args: [...argv], options: spec, strict: false, allowPositionals: true, tokens: true });
  const seen = new Map<string, string | undefined>();
  for (const token of tokens) {
    if (token.kind === 'positional') throw new UsageError(`unexpected argument '${token.value}' (every input is given with a flag, e.g. --structure FILE)`);
    if (token.kind !== 'option') continue;
    const known = spec[token.name];
    if (known === undefined) throw new UsageError(`unknown option '${token.rawName}'`);
    if (known.type === 'string' && token.value === undefined) throw new UsageError(`option '${token.rawName}' needs a value`);
    if (known.type === 'boolean' && token.value !== undefined) throw new UsageError(`option '${token.rawName}' takes no value`);
    if (seen.has(token.name) && known.multiple !== true) {
      const both = known.type === 'string' ? ` ('${seen.get(token.name) ?? ''}' and '${token.value ?? ''}')` : '';
      throw new UsageError(`option '--${token.name}' is given twice${both}; give it once`);
    }
    seen.set(token.name, token.value);
  }
  return { values: values };
}

export { resultFiles };

async function run(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandLine(argv);
  if (values['help'] === true) {
    io.out(`Usage:\n${TRANSFER_HELP}\n`);
    return 0;
  }
  for (const flag of REQUIRED_FLAGS) {
    if (values[flag] === undefined || values[flag] === '') throw new UsageError(`missing required option --${flag}`);
  }
  /** A bad option value names its flag (exit 2). */
  const asUsage = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof InvalidParameterError)) throw e;
      const flag = e.parameter === undefined ? undefined : flagOf(e.parameter);
      if (flag === undefined) throw e;
      throw new UsageError(`${flag}: ${e.message}`);
    }
  };
  let options: TransferOptions;
  try {
    options = validateTransferOptions(optionsFromFlags(values));
  } catch (e) {
    if (!(e instanceof InvalidParameterError)) throw e;
    const flag = e.parameter === undefined ? undefined : flagOf(e.parameter);
    throw new UsageError(flag === undefined ? e.message : `${flag}: ${e.message}`);
  }
  const structure = String(values['structure']);
  const appearance = String(values['appearance']);
  const outDir = String(values['out'] ?? DEFAULT_OUT_DIR);
  const modelArg = String(values['model'] ?? DEFAULT_MODEL_ID);
  const given = { featRange: values['feat-range'] !== undefined, adainRange: values['adain-range'] !== undefined };

  // Before any model is opened (or downloaded): the inputs, then the output folder.
  const prepared = await asUsage(() => prepareTransferInputs({ structure, appearance }, options));
  const samMasks = (prepared.samPrompts.structure === undefined ? 0 : 1) + (prepared.samPrompts.appearance === undefined ? 0 : 1);
  const masks = (options.structureMask === undefined ? 0 : 1) + (options.appearanceMask === undefined ? 0 : 1) + samMasks;
  const folder = RunFolder.claim(outDir, {
    overwrite: values['overwrite'] === true,
    expectedBytes: expectedOutputBytes(prepared.size.width, prepared.size.height, masks),
    ...(io.freeBytes === undefined ? {} : { freeBytes: io.freeBytes }),
  });

  const loadOptions: Parameters<typeof loadPipeline>[1] = {
    device: options.device,
    precision: options.precision,
    onStatus: (s) => io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye: ${s}\n`),
  };
  if (options.cacheDir !== undefined) loadOptions.cacheDir = options.cacheDir;
  if (io.env !== undefined) loadOptions.env = io.env;
  loadOptions.onDownload = downloadPrinter(io, modelArg);
  if (samMasks > 0) {
    // The SAM-HQ weights are found (or downloaded) and checked against their config before Stable Diffusion loads.
    try {
      const samArg = String(values['sam-model'] ?? DEFAULT_SAM_MODEL_ID);
      const sam = await obtainSamModel(samArg, {
        ...(io.env === undefined ? {} : { env: io.env }),
        onDownload: downloadPrinter(io, samArg),
      });
      openSamWeights(sam.path).source.close();
      loadOptions.samModel = sam.path;
    } catch (e) {
      folder.release();
      throw e;
    }
  } else if (values['sam-model'] !== undefined) {
    folder.release();
    throw new UsageError('--sam-model: no image asks for a SAM-HQ mask (give --structure-box / --appearance-box, points, or --masks sam)');
  }
  const controller = new AbortController();
  let pipeline: TransferPipeline | undefined;
  let loading = true;
  let presses = 0;
  const onSigint = (): void => {
    presses += 1;
    controller.abort();
    if (loading || presses > 1) {
      // Opening or downloading the model cannot be interrupted midway, and a second Ctrl-C does not wait for the
      // current step: give the folder back and stop now, as Ctrl-C does.
      folder.release();
      process.removeListener('SIGINT', onSigint);
      io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye transfer: interrupted (Ctrl-C); nothing was written\n`);
      process.kill(process.pid, 'SIGINT');
    }
  };
  process.on('SIGINT', onSigint);
  try {
    pipeline = await loadPipeline(modelArg, loadOptions);
    loading = false;
    if (controller.signal.aborted) throw new AbortError('transfer aborted');
    const result = await pipeline.transfer({ structure, appearance }, options, { onProgress: progressPrinter(io), signal: controller.signal });
    const files = await resultFiles(result);
    const names = [...files.map((f) => f.name), 'run.json'];
    const record = runRecord({ structure, appearance, outDir, argv, given }, options, result, names);
    files.push({ name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) });
    if (controller.signal.aborted) throw new AbortError('transfer aborted');
    folder.write(files);
    io.out(`${resolve(outDir, 'result.png')}\n`);
    return 0;
  } catch (e) {
    folder.release();
    throw e;
  } finally {
    loading = false;
    process.removeListener('SIGINT', onSigint);
    await pipeline?.dispose();
  }
}

/** Run `eye4eye transfer ARGS`; returns the exit code. */
export async function runTransferCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof AbortError) {
      io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye transfer: interrupted (Ctrl-C); nothing was written\n`);
      return 130;
    }
    if (e instanceof UsageError) {
      io.err(`eye4eye transfer: ${e.message}\n  (see eye4eye transfer --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye transfer: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export { TRANSFER_CLI_OPTIONS };
