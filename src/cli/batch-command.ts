/**
 * `eye4eye batch FILE`: many transfers from a CSV or JSON Lines file, models loaded once, one output folder per row
 * and a manifest (src/batch/). Exit codes: 0 every row done; 1 a row failed (see the manifest) or another E4EError;
 * 2 usage; 130 interrupted (Ctrl-C: the batch stops after the current row; a second Ctrl-C abandons it too).
 */
import { dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E4EError } from '../errors.js';
import { runBatch } from '../batch/batch.js';
import { openSamWeights } from '../models/sam/weights.js';
import { DEFAULT_MODEL_ID, DEFAULT_SAM_MODEL_ID, obtainSamModel } from '../pipeline/model-source.js';
import { DEVICES, PRECISIONS, type Device, type Precision } from '../pipeline/options.js';
import { loadPipeline } from '../pipeline/pipeline.js';
import { UsageError } from './options-table.js';
import { downloadPrinter, progressPrinter, type CommandIo } from './transfer-command.js';

export const BATCH_HELP = `  eye4eye batch FILE [--out DIR] [--model ID|DIR] [--sam-model ID|DIR] [--retry-failed] [--device D] [--cache-dir DIR]
    Many transfers from a CSV file (a header row; columns structure, appearance, domain, optional id, and any
    transfer option by flag or option name: structure-mask, structure-box "x0,y0,x1,y1", steps, seed, ...) or a
    JSON Lines file (one object per row with those keys). Paths are relative to FILE's folder. Writes --out/<id>/
    (what transfer writes) per row and --out/manifest.json (default --out: FILE without its extension + "-out").
    A second run skips the rows done and, with --retry-failed, retries the failed ones; Ctrl-C stops after the row.`;

const SPEC = {
  out: { type: 'string' },
  model: { type: 'string' },
  'sam-model': { type: 'string' },
  'retry-failed': { type: 'boolean' },
  device: { type: 'string' },
  precision: { type: 'string' },
  'cache-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface BatchCommandIo extends CommandIo {
  /** Stop after the current row (tests; the command also listens to SIGINT). */
  stop?: AbortSignal;
  abort?: AbortSignal;
  /** Called after each computed row (tests). */
  onRowFinished?: Parameters<typeof runBatch>[0]['onRowFinished'];
}

function parse(argv: readonly string[]): { file: string; values: Record<string, string | boolean | undefined> } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: SPEC, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help'] === true) return { file: '', values };
  if (parsed.positionals.length !== 1)
    throw new UsageError(
      parsed.positionals.length === 0 ? 'missing the batch FILE' : `one batch FILE, not ${parsed.positionals.length} (${parsed.positionals.join(', ')})`,
    );
  if (values['device'] !== undefined && !(DEVICES as readonly string[]).includes(String(values['device'])))
    throw new UsageError(`--device: expected one of ${DEVICES.join(', ')} but received '${String(values['device'])}'`);
  if (values['precision'] !== undefined && !(PRECISIONS as readonly string[]).includes(String(values['precision'])))
    throw new UsageError(`--precision: expected one of ${PRECISIONS.join(', ')} but received '${String(values['precision'])}'`);
  return { file: parsed.positionals[0]!, values };
}

export function defaultBatchOut(file: string): string {
  const abs = resolve(file);
  const ext = extname(abs);
  return join(dirname(abs), `${abs.slice(dirname(abs).length + 1, abs.length - ext.length)}-out`);
}

async function run(argv: readonly string[], io: BatchCommandIo): Promise<number> {
  const { file, values } = parse(argv);
  if (values['help'] === true) {
    io.out(`Usage:\n${BATCH_HELP}\n`);
    return 0;
  }
  const model = String(values['model'] ?? DEFAULT_MODEL_ID);
  const device = values['device'] as Device | undefined;
  const precision = values['precision'] as Precision | undefined;
  const cacheDir = values['cache-dir'] as string | undefined;
  const stop = new AbortController();
  const abort = new AbortController();
  io.stop?.addEventListener('abort', () => stop.abort(), { once: true });
  io.abort?.addEventListener('abort', () => abort.abort(), { once: true });
  let presses = 0;
  const onSigint = (): void => {
    presses += 1;
    if (presses === 1) {
      io.err('\neye4eye batch: Ctrl-C: stopping after the current row (Ctrl-C again to abandon it)\n');
      stop.abort();
    } else abort.abort();
  };
  process.on('SIGINT', onSigint);
  const status = (s: string): void => io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye: ${s}\n`);
  try {
    const result = await runBatch({
      file,
      outDir: String(values['out'] ?? defaultBatchOut(file)),
      model,
      retryFailed: values['retry-failed'] === true,
      batchOptions: {
        ...(device === undefined ? {} : { device }),
        ...(precision === undefined ? {} : { precision }),
        ...(cacheDir === undefined ? {} : { cacheDir }),
      },
      log: (line) => io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}${line}\n`),
      onProgress: (() => {
        const printers = new Map<number, ReturnType<typeof progressPrinter>>();
        return (row, e) => {
          let p = printers.get(row.row);
          if (p === undefined) {
            p = progressPrinter({ ...io, err: (s) => io.err(io.isTTY === true ? s : `  ${row.id}: ${s}`) });
            printers.set(row.row, p);
          }
          p(e);
        };
      })(),
      ...(io.onRowFinished === undefined ? {} : { onRowFinished: io.onRowFinished }),
      stop: stop.signal,
      abort: abort.signal,
      argv,
      openPipeline: async (needsSam) => {
        const options: Parameters<typeof loadPipeline>[1] = { keepSessions: true, onStatus: status, onDownload: downloadPrinter(io, model) };
        if (device !== undefined) options.device = device;
        if (precision !== undefined) options.precision = precision;
        if (cacheDir !== undefined) options.cacheDir = cacheDir;
        if (io.env !== undefined) options.env = io.env;
        if (needsSam) {
          const samArg = String(values['sam-model'] ?? DEFAULT_SAM_MODEL_ID);
          const sam = await obtainSamModel(samArg, { ...(io.env === undefined ? {} : { env: io.env }), onDownload: downloadPrinter(io, samArg) });
          openSamWeights(sam.path).source.close();
          options.samModel = sam.path;
        }
        return loadPipeline(model, options);
      },
    });
    const s = result.manifest.summary;
    io.err(
      `batch: ${s.done} done, ${s.failed} failed, ${s.pending} pending of ${s.rows}; inversion cache ${s.inversionCacheHits} hit${s.inversionCacheHits === 1 ? '' : 's'}, ${s.inversionCacheMisses} computed\n`,
    );
    io.out(`${result.manifestPath}\n`);
    if (result.interrupted) {
      io.err('eye4eye batch: interrupted; run the same command again to resume\n');
      return 130;
    }
    return s.failed > 0 ? 1 : 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** Run `eye4eye batch ARGS`; returns the exit code. */
export async function runBatchCommand(argv: readonly string[], io: BatchCommandIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`eye4eye batch: ${e.message}\n  (see eye4eye batch --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye batch: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
