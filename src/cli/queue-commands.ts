/**
 * `eye4eye worker --redis URL` and `eye4eye submit --redis URL FILE`: many machines working from one queue
 * (src/queue/). Exit codes: worker 0 when stopped (Ctrl-C / SIGTERM: it finishes its current job first); submit 0
 * when every row is done, 1 when a row failed (its message is printed), 2 usage.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E4EError } from '../errors.js';
import { DEFAULT_MODEL_ID } from '../pipeline/model-source.js';
import { DEVICES, PRECISIONS, type Device, type Precision } from '../pipeline/options.js';
import { loadPipeline } from '../pipeline/pipeline.js';
import { DEFAULT_ATTEMPTS, DEFAULT_QUEUE, ensureRedisReachable, redisConnection } from '../queue/jobs.js';
import { submitBatch } from '../queue/submit.js';
import { startQueueWorker } from '../queue/worker.js';
import { UsageError } from './options-table.js';
import { downloadPrinter, type CommandIo } from './transfer-command.js';

export const WORKER_HELP = `  eye4eye worker --redis URL [--queue NAME] [--out DIR] [--model ID|DIR] [--sam-model ID|DIR] [--device D] [--cache-dir DIR]
    Take transfer jobs from the Redis queue (BullMQ, default queue '${DEFAULT_QUEUE}') and run them with this machine's
    models; each row's output goes to --out/<batch>/<row id> (default ./eye4eye-queue-out, a shared folder when
    several machines work). Stops (after its current job) on Ctrl-C or SIGTERM. A killed worker's job is retried
    by another after --lock-duration MS (default 30000).`;

export const SUBMIT_HELP = `  eye4eye submit --redis URL FILE [--queue NAME] [--name BATCH] [--attempts N] [--retry-failed] [--no-follow]
    Enqueue a batch file (as eye4eye batch reads it; the images travel in the jobs) and follow it until every row is
    done or failed (each tried --attempts times, default ${DEFAULT_ATTEMPTS}). Submitting the same rows again adds nothing.`;

function usage(e: unknown): never {
  throw new UsageError(e instanceof Error ? e.message : String(e));
}

function positiveInt(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${flag}: expected a positive integer but received '${raw}'`);
  return v;
}

function checkRedis(values: Record<string, unknown>): string {
  const url = values['redis'];
  if (typeof url !== 'string' || url === '') throw new UsageError('missing required option --redis URL (e.g. redis://127.0.0.1:6379)');
  try {
    redisConnection(url);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  return url;
}

async function worker(argv: readonly string[], io: CommandIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        redis: { type: 'string' },
        queue: { type: 'string' },
        out: { type: 'string' },
        model: { type: 'string' },
        'sam-model': { type: 'string' },
        device: { type: 'string' },
        precision: { type: 'string' },
        'cache-dir': { type: 'string' },
        'lock-duration': { type: 'string' },
        'stalled-interval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    usage(e);
  }
  if (values['help'] === true) {
    io.out(`Usage:\n${WORKER_HELP}\n`);
    return 0;
  }
  const redis = checkRedis(values);
  const device = values['device'] as Device | undefined;
  const precision = values['precision'] as Precision | undefined;
  if (device !== undefined && !DEVICES.includes(device)) throw new UsageError(`--device: expected one of ${DEVICES.join(', ')} but received '${device}'`);
  if (precision !== undefined && !PRECISIONS.includes(precision))
    throw new UsageError(`--precision: expected one of ${PRECISIONS.join(', ')} but received '${precision}'`);
  const lockDuration = positiveInt('lock-duration', values['lock-duration'] as string | undefined);
  const stalledInterval = positiveInt('stalled-interval', values['stalled-interval'] as string | undefined);
  const cacheDir = values['cache-dir'] as string | undefined;
  const model = String(values['model'] ?? DEFAULT_MODEL_ID);
  const load: Parameters<typeof loadPipeline>[1] = {
    keepSessions: true,
    onStatus: (s) => io.err(`eye4eye: ${s}\n`),
    onDownload: downloadPrinter(io, model),
  };
  if (device !== undefined) load.device = device;
  if (precision !== undefined) load.precision = precision;
  if (cacheDir !== undefined) load.cacheDir = cacheDir;
  if (values['sam-model'] !== undefined) load.samModel = String(values['sam-model']);
  if (io.env !== undefined) load.env = io.env;
  await ensureRedisReachable(redis);
  const pipeline = await loadPipeline(model, load);
  const w = startQueueWorker({
    redis,
    queue: String(values['queue'] ?? DEFAULT_QUEUE),
    outDir: resolve(String(values['out'] ?? './eye4eye-queue-out')),
    pipeline,
    batchOptions: {
      ...(device === undefined ? {} : { device }),
      ...(precision === undefined ? {} : { precision }),
      ...(cacheDir === undefined ? {} : { cacheDir }),
    },
    ...(lockDuration === undefined ? {} : { lockDuration }),
    ...(stalledInterval === undefined ? {} : { stalledInterval }),
    log: (line) => io.err(`${line}\n`),
  });
  w.on('error', (e) => io.err(`eye4eye worker: ${e.message}\n`));
  await w.waitUntilReady();
  io.err(`eye4eye worker: waiting for jobs on ${String(values['queue'] ?? DEFAULT_QUEUE)} (${redis})\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      io.err('eye4eye worker: stopping after the current job\n');
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await w.close();
  await pipeline.dispose();
  return 0;
}

async function submit(argv: readonly string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        redis: { type: 'string' },
        queue: { type: 'string' },
        name: { type: 'string' },
        attempts: { type: 'string' },
        'retry-failed': { type: 'boolean' },
        'no-follow': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    usage(e);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help'] === true) {
    io.out(`Usage:\n${SUBMIT_HELP}\n`);
    return 0;
  }
  const redis = checkRedis(values);
  if (parsed.positionals.length !== 1)
    throw new UsageError(parsed.positionals.length === 0 ? 'missing the batch FILE' : `one batch FILE, not ${parsed.positionals.length}`);
  const attempts = positiveInt('attempts', values['attempts'] as string | undefined);
  await ensureRedisReachable(redis);
  const result = await submitBatch({
    redis,
    file: parsed.positionals[0]!,
    ...(values['queue'] === undefined ? {} : { queue: String(values['queue']) }),
    ...(values['name'] === undefined ? {} : { name: String(values['name']) }),
    ...(attempts === undefined ? {} : { attempts }),
    retryFailed: values['retry-failed'] === true,
    follow: values['no-follow'] !== true,
    log: (line) => io.err(`${line}\n`),
  });
  const done = result.rows.filter((r) => r.status === 'done').length;
  const failed = result.rows.filter((r) => r.status === 'failed');
  io.out(`${JSON.stringify({ batch: result.batch, rows: result.rows }, null, 2)}\n`);
  io.err(`submit: batch ${result.batch}: ${done} done, ${failed.length} failed of ${result.rows.length}\n`);
  return failed.length > 0 ? 1 : 0;
}

async function guard(name: string, fn: () => Promise<number>, io: CommandIo): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`eye4eye ${name}: ${e.message}\n  (see eye4eye ${name} --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye ${name}: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export const runWorkerCommand = (argv: readonly string[], io: CommandIo): Promise<number> => guard('worker', () => worker(argv, io), io);
export const runSubmitCommand = (argv: readonly string[], io: CommandIo): Promise<number> => guard('submit', () => submit(argv, io), io);
