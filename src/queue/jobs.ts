/**
 * The job queue of `eye4eye submit` / `eye4eye worker`, on Redis with BullMQ.
 *
 * Why BullMQ: it is maintained (frequent releases, used widely), its jobs live in Redis with atomic Lua moves
 * between wait / active / completed / failed, a worker holds a lock on its job that it renews while it runs, and a
 * job whose lock lapses (its worker was killed or hung) is found by the stalled-job check and put back for another
 * worker; attempts (bounded retries) and failure reasons are built in. A home-made list queue would have to rebuild
 * exactly those parts.
 *
 * One job = one batch row. Its data carries the inputs' content (base64) so a worker on another machine can run it;
 * the worker writes the row's output to its --out folder, OUT/<batch>/<row id>, through RunFolder (batch/row-runner.ts),
 * and a row whose run.json already holds the row's options hash is not computed again: a job that comes back after
 * its worker died is either finished by the next worker or found done, never written twice into one folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Redis } from 'ioredis';
import { FileError, InvalidParameterError, QueueError } from '../errors.js';
import { validateTransferOptions, type TransferOptions } from '../pipeline/options.js';
import type { BatchRow } from '../batch/batch-rows.js';

export const DEFAULT_QUEUE = 'eye4eye';
export const JOB_NAME = 'transfer-row';
/** Attempts of a job before it is failed (a bad image fails every time). */
export const DEFAULT_ATTEMPTS = 3;
/** How long finished jobs stay in Redis (seconds). */
export const JOB_RETENTION_SECONDS = 7 * 24 * 3600;

export interface FileContent {
  name: string;
  base64: string;
}

export interface RowJobData {
  /** The batch's name: the results go to OUT/<batch>/<id>. */
  batch: string;
  row: number;
  line: number;
  id: string;
  optionsHash: string;
  structure: FileContent;
  appearance: FileContent;
  structureMask?: FileContent;
  appearanceMask?: FileContent;
  /** The row's options without the mask paths and the batch-level ones (device, precision, cacheDir). */
  options: Omit<TransferOptions, 'structureMask' | 'appearanceMask' | 'device' | 'precision' | 'cacheDir'>;
  given: { featRange: boolean; adainRange: boolean };
}

export interface RowJobResult {
  outDir: string;
  /** true when the output was found done (an earlier attempt wrote it) and nothing was computed. */
  found: boolean;
  worker: string;
  seconds: number;
  inversionCache?: { app: 'hit' | 'miss'; struct: 'hit' | 'miss' };
}

/** The BullMQ connection options of a redis:// URL. */
export function redisConnection(url: string): { host: string; port: number; db?: number; username?: string; password?: string; maxRetriesPerRequest: null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidParameterError(`--redis: expected a redis://HOST:PORT URL but received '${url}'`, { parameter: 'redis' });
  }
  if (u.protocol !== 'redis:') throw new InvalidParameterError(`--redis: expected a redis://HOST:PORT URL but received '${url}'`, { parameter: 'redis' });
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !Number.isInteger(db)) throw new InvalidParameterError(`--redis: the database of '${url}' is not a number`, { parameter: 'redis' });
  return {
    host: u.hostname === '' ? '127.0.0.1' : u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    ...(db === undefined ? {} : { db }),
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    // BullMQ's workers block on Redis: ioredis must not give up on a command.
    maxRetriesPerRequest: null,
  };
}

/** Connect to the Redis of `url` and ping it, or a QueueError naming the URL (instead of waiting forever). */
export async function ensureRedisReachable(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...redisConnection(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let connectionError: Error | undefined;
  client.on('error', (e: Error) => {
    connectionError ??= e;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    // ioredis rejects with "Connection is closed."; the reason came with its error event.
    const cause = connectionError ?? e;
    throw new QueueError(`cannot reach Redis at ${url} (${cause instanceof Error ? cause.message : String(cause)})`, {
      cause,
      hint: 'start redis-server there, or give --redis the URL of a running one',
    });
  } finally {
    client.disconnect();
  }
}

/** A safe name (folder, job id part). */
export function safeName(s: string): string {
  const cleaned = s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned === '' ? 'batch' : cleaned.slice(0, 100);
}

/** The job id of a row: batch, row id and options hash (the same row submitted twice is one job). */
export function rowJobId(batch: string, row: Pick<BatchRow, 'id' | 'optionsHash'>): string {
  return `${batch}.${row.id}.${row.optionsHash.slice(0, 16)}`;
}

function content(path: string): FileContent {
  return { name: basename(path), base64: readFileSync(path).toString('base64') };
}

/** A parsed batch row as job data, with its files' content. */
export function rowJobData(batch: string, row: BatchRow): RowJobData {
  const { structureMask, appearanceMask, device: _device, precision: _precision, cacheDir: _cacheDir, ...options } = row.options;
  void _device;
  void _precision;
  void _cacheDir;
  return {
    batch,
    row: row.row,
    line: row.line,
    id: row.id,
    optionsHash: row.optionsHash,
    structure: content(row.structure),
    appearance: content(row.appearance),
    ...(typeof structureMask === 'string' ? { structureMask: content(structureMask) } : {}),
    ...(typeof appearanceMask === 'string' ? { appearanceMask: content(appearanceMask) } : {}),
    options,
    given: row.given,
  };
}

/** Write a job's files into `dir` and return the row to run (the batch-level options from the worker). */
export function materializeRow(data: RowJobData, dir: string, batchOptions: Partial<Pick<TransferOptions, 'device' | 'precision' | 'cacheDir'>>): BatchRow {
  for (const [k, v] of Object.entries({ batch: data.batch, id: data.id })) {
    if (typeof v !== 'string' || safeName(v) !== v) throw new FileError(`job data: ${k} ${JSON.stringify(v)} is not a safe folder name`);
  }
  mkdirSync(dir, { recursive: true });
  const write = (role: string, f: FileContent | undefined): string | undefined => {
    if (f === undefined) return undefined;
    if (typeof f.base64 !== 'string') throw new FileError(`job ${data.id}: the ${role} file has no content`);
    const path = join(dir, `${role}-${safeName(String(f.name))}`);
    writeFileSync(path, Buffer.from(f.base64, 'base64'));
    return path;
  };
  const structureMask = write('structure-mask', data.structureMask);
  const appearanceMask = write('appearance-mask', data.appearanceMask);
  const options = validateTransferOptions({
    ...data.options,
    ...batchOptions,
    ...(structureMask === undefined ? {} : { structureMask }),
    ...(appearanceMask === undefined ? {} : { appearanceMask }),
  });
  return {
    row: data.row,
    line: data.line,
    id: data.id,
    structure: write('structure', data.structure)!,
    appearance: write('appearance', data.appearance)!,
    options,
    optionsHash: data.optionsHash,
    given: data.given,
  };
}
