/**
 * `eye4eye transfer`: parse the flags (options-table.ts), run the library pipeline, write the pictures and run.json.
 * Exit codes: 0 done; 2 usage (unknown / missing option, malformed or out-of-range value); 1 any other E4EError.
 * Files are written to temporary names and renamed; if anything fails, what this run wrote is removed.
 */
import { existsSync, mkdirSync, renameSync, rmSync, rmdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { E4EError, FileError, InvalidParameterError } from '../errors.js';
import { correspondencePng, gridPng, maskToPng } from '../io/image.js';
import { DEFAULT_MODEL_ID, type DownloadProgress } from '../pipeline/model-source.js';
import { validateTransferOptions, type TransferOptions } from '../pipeline/options.js';
import { loadPipeline, type ProgressEvent, type TransferOutput } from '../pipeline/pipeline.js';
import { VERSION } from '../version.js';
import { ORT_VERSION } from '../runtime/session.js';
import { flagHelp, flagOf, optionsFromFlags, parseArgsSpec, REQUIRED_FLAGS, TRANSFER_CLI_OPTIONS, UsageError } from './options-table.js';

export const DEFAULT_OUT_DIR = './eye4eye-out';

export const TRANSFER_HELP = `  eye4eye transfer --structure FILE --appearance FILE --domain NAME [options]
    Appearance transfer (Eye-for-an-eye, or Cross-Image Attention with --method cia): the structure image's
    layout with the appearance image's look.
    Writes result.png, grid.png, correspondence.png, mask-*.png (when masks are given) and run.json to --out.
${flagHelp()}`;

export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress bar) or not (one line per phase). */
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
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

export interface OutputFile {
  name: string;
  data: Buffer;
}

/** Write all files atomically (temp name + rename); on failure remove everything this call wrote. */
export function writeOutputs(dir: string, files: readonly OutputFile[]): string[] {
  let createdRoot: string | undefined;
  const temps: string[] = [];
  const written: string[] = [];
  try {
    createdRoot = mkdirSync(dir, { recursive: true });
    for (const f of files) {
      const tmp = join(dir, `.${f.name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
      temps.push(tmp);
      writeFileSync(tmp, f.data);
    }
    files.forEach((f, i) => {
      renameSync(temps[i]!, join(dir, f.name));
      written.push(join(dir, f.name));
    });
    return written;
  } catch (cause) {
    for (const p of [...temps, ...written]) rmSync(p, { force: true });
    if (createdRoot !== undefined) rmSync(createdRoot, { recursive: true, force: true });
    else if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
    throw new FileError(`${resolve(dir)}: cannot write the outputs (${(cause as Error).message})`, { cause });
  }
}

function describeInput(source: unknown): string | undefined {
  return typeof source === 'string' ? resolve(source) : source === undefined ? undefined : '<buffer>';
}

export function runRecord(
  args: { structure: string; appearance: string; outDir: string },
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
      cacheDir: options.cacheDir,
    },
    model: m.model,
    versions: { eye4eye: VERSION, onnxruntime: ORT_VERSION, node: process.version, sharp: sharp.versions.sharp, vips: sharp.versions.vips },
    timings: result.timings,
    cache: { inversion: { app: m.inversionCache.app, struct: m.inversionCache.struct }, dir: m.inversionCache.dir },
    sizes: { structure: m.structureSize, appearance: m.appearanceSize, working: m.workingSize, latent: m.latentSize },
    correspondence:
      result.matches === undefined
        ? null
        : { site: result.matches.site, iteration: result.matches.iteration, tokens: { width: result.matches.width, height: result.matches.height } },
    outDir: resolve(args.outDir),
    outputs: files,
  };
}

export function parseCommandLine(argv: readonly string[]): { values: Record<string, string | boolean | undefined> } {
  const spec = parseArgsSpec();
  // Not strict: the tokens are checked here, so each mistake is named from the token itself.
  const { values, tokens } = parseArgs({ args: [...argv], options: spec, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'positional') throw new UsageError(`unexpected argument '${token.value}' (every input is given with a flag, e.g. --structure FILE)`);
    if (token.kind !== 'option') continue;
    const known = spec[token.name];
    if (known === undefined) throw new UsageError(`unknown option '${token.rawName}'`);
    if (known.type === 'string' && token.value === undefined) throw new UsageError(`option '${token.rawName}' needs a value`);
    if (known.type === 'boolean' && token.value !== undefined) throw new UsageError(`option '${token.rawName}' takes no value`);
  }
  return { values: values };
}

/** The pictures of one transfer: result.png, grid.png, the masks given, correspondence.png (Eye-for-an-eye). */
export async function resultFiles(result: TransferOutput): Promise<OutputFile[]> {
  const files: OutputFile[] = [
    { name: 'result.png', data: result.png },
    {
      name: 'grid.png',
      data: await gridPng([
        { image: result.structure, label: 'structure' },
        { image: result.appearance, label: 'appearance' },
        { image: result.image, label: 'result' },
      ]),
    },
  ];
  if (result.structureMask !== undefined) files.push({ name: 'mask-structure.png', data: await maskToPng(result.structureMask) });
  if (result.appearanceMask !== undefined) files.push({ name: 'mask-appearance.png', data: await maskToPng(result.appearanceMask) });
  if (result.matches !== undefined) files.push({ name: 'correspondence.png', data: await correspondencePng(result.image, result.appearance, result.matches) });
  return files;
}

async function run(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandLine(argv);
  if (values['help'] === true) {
    io.out(`Usage:\n${TRANSFER_HELP}\n`);
    return 0;
  }
  for (const flag of REQUIRED_FLAGS) {
    if (values[flag] === undefined || values[flag] === '') throw new UsageError(`missing required option --${flag}`);
  }
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

  const loadOptions: Parameters<typeof loadPipeline>[1] = {
    device: options.device,
    precision: options.precision,
    onStatus: (s) => io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye: ${s}\n`),
  };
  if (options.cacheDir !== undefined) loadOptions.cacheDir = options.cacheDir;
  if (io.env !== undefined) loadOptions.env = io.env;
  loadOptions.onDownload = downloadPrinter(io, modelArg);
  const pipeline = await loadPipeline(modelArg, loadOptions);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const result = await pipeline.transfer({ structure, appearance }, options, { onProgress: progressPrinter(io), signal: controller.signal });
    const files = await resultFiles(result);
    const names = [...files.map((f) => f.name), 'run.json'];
    const record = runRecord({ structure, appearance, outDir }, options, result, names);
    files.push({ name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) });
    writeOutputs(outDir, files);
    io.out(`${resolve(outDir, 'result.png')}\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await pipeline.dispose();
  }
}

/** Run `eye4eye transfer ARGS`; returns the exit code. */
export async function runTransferCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
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
