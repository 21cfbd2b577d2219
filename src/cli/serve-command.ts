/**
 * `eye4eye serve`: the local web page and JSON API (src/server/, docs/api.md). Binds 127.0.0.1 unless --host says
 * otherwise (with a warning: the page runs models and writes files for anyone who can reach it).
 */
import { parseArgs } from 'node:util';
import { E4EError } from '../errors.js';
import { DEFAULT_MODEL_ID } from '../pipeline/model-source.js';
import { DEVICES, PRECISIONS, type TransferOptions } from '../pipeline/options.js';
import { startServer, type ServeOptions } from '../server/server.js';
import { UsageError } from './options-table.js';
import type { CommandIo } from './transfer-command.js';

export const DEFAULT_PORT = 7860;
/** Not the CLI's ./eye4eye-out (one run's folder): the server keeps one sub-folder per run. */
export const DEFAULT_SERVE_OUT_DIR = './eye4eye-runs';

export const SERVE_HELP = `  eye4eye serve [--port N] [--host H] [--model ID|DIR] [--sam-model DIR] [--out DIR]
    A local web page (and JSON API, docs/api.md): two images in, masks, live progress, the result and its correspondence.
    --port N           port (default ${DEFAULT_PORT}; 0 = any free port)
    --host H           address to bind (default 127.0.0.1; any other is reachable from the network: a warning is printed)
    --model ID|DIR     Hugging Face id (from the local HF cache) or diffusers folder (default ${DEFAULT_MODEL_ID})
    --sam-model PATH   SAM-HQ weights (transformers folder or official .pth) for masks from a box or clicks (without it the page offers mask files and automatic)
    --out DIR          output folder: one sub-folder per run, listed as past runs (default ${DEFAULT_SERVE_OUT_DIR})
    --cache-dir DIR    cache of built graphs and inversions
    --device ${DEVICES.join('|')}   execution provider (default cpu)
    --precision ${PRECISIONS.join('|')}   UNet precision (default fp32)
    --threads N        onnxruntime intra-op threads
    --redis URL        put jobs on this Redis/BullMQ queue for \`eye4eye worker\` processes instead of running them here
                       (the workers' --out must be this --out, a shared folder: they write OUT/serve/<run id>)
    --queue NAME       the queue's name with --redis (default eye4eye)`;

const SPEC = {
  port: { type: 'string' },
  host: { type: 'string' },
  model: { type: 'string' },
  'sam-model': { type: 'string' },
  out: { type: 'string' },
  'cache-dir': { type: 'string' },
  device: { type: 'string' },
  precision: { type: 'string' },
  threads: { type: 'string' },
  redis: { type: 'string' },
  queue: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Loopback addresses: reachable from this machine only. */
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

function integer(flag: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min || v > max)
    throw new UsageError(`--${flag}: expected an integer between ${min} and ${max} but received '${raw}'`);
  return v;
}

function serveOptions(values: Record<string, string | boolean | undefined>): ServeOptions {
  const options: ServeOptions = { model: String(values['model'] ?? DEFAULT_MODEL_ID), outDir: String(values['out'] ?? DEFAULT_SERVE_OUT_DIR) };
  options.port = values['port'] === undefined ? DEFAULT_PORT : integer('port', String(values['port']), 0, 65535);
  if (values['host'] !== undefined) options.host = String(values['host']);
  if (values['cache-dir'] !== undefined) options.cacheDir = String(values['cache-dir']);
  if (values['redis'] !== undefined) options.redis = String(values['redis']);
  if (values['queue'] !== undefined) {
    if (options.redis === undefined) throw new UsageError('--queue needs --redis');
    options.queue = String(values['queue']);
  }
  if (values['threads'] !== undefined) options.threads = integer('threads', String(values['threads']), 1, 1024);
  const device = values['device'];
  if (device !== undefined) {
    if (!(DEVICES as readonly string[]).includes(String(device)))
      throw new UsageError(`--device: expected one of ${DEVICES.join(', ')} but received '${String(device)}'`);
    options.device = device as TransferOptions['device'];
  }
  const precision = values['precision'];
  if (precision !== undefined) {
    if (!(PRECISIONS as readonly string[]).includes(String(precision)))
      throw new UsageError(`--precision: expected one of ${PRECISIONS.join(', ')} but received '${String(precision)}'`);
    options.precision = precision as TransferOptions['precision'];
  }
  return options;
}

/** Run `eye4eye serve ARGS` until SIGINT / SIGTERM (or `stop` aborts); returns the exit code. */
export async function runServeCommand(argv: readonly string[], io: CommandIo, stop?: AbortSignal): Promise<number> {
  let options: ServeOptions;
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: SPEC, strict: true, allowPositionals: true });
    if (values.help === true) {
      io.out(`Usage:\n${SERVE_HELP}\n`);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    options = serveOptions(values);
    if (values['sam-model'] !== undefined) options.samModel = String(values['sam-model']);
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && 'code' in e)) {
      io.err(`eye4eye serve: ${e.message}\n  (see eye4eye serve --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye serve: ${e.name} [${e.code}]: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    io.err(`eye4eye serve: WARNING: binding ${host}: anyone who can reach this address can run transfers and read the output folder (there is no login)\n`);
  }
  options.onStatus = (s) => io.err(`eye4eye: ${s}\n`);
  io.err(options.redis === undefined ? `eye4eye serve: loading ${options.model} ...\n` : `eye4eye serve: jobs go to the queue at ${options.redis}\n`);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(options);
  } catch (e) {
    if (options.redis !== undefined && e instanceof E4EError) {
      io.err(`eye4eye serve: ${e.name} [${e.code}]: ${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}\n`);
      return 1;
    }
    throw e;
  }
  io.out(`eye4eye serve: ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.removeListener('SIGINT', done);
      process.removeListener('SIGTERM', done);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    stop?.addEventListener('abort', done);
  });
  io.err('eye4eye serve: stopping\n');
  await server.close();
  return 0;
}
