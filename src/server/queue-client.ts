/**
 * `eye4eye serve --redis URL`: the server's jobs go to the BullMQ queue of `eye4eye worker` (src/queue/) instead of
 * its local transfer worker thread. Each job is one row job (the inputs carried as content, src/queue/jobs.ts) of the
 * batch `serve`, so a worker writes it to WORKER_OUT/serve/<run id>; the server reads the finished files from that
 * folder, which is why serve's --out must be the workers' --out (a shared folder). Progress comes from the workers'
 * job.updateProgress through QueueEvents; no latent previews and no matches.json (the row runner does not write it).
 * The model is not loaded here: its size multiple is read from its config files.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { FileError } from '../errors.js';
import { resolveModelSource } from '../pipeline/model-source.js';
import type { ProgressEvent } from '../pipeline/pipeline.js';
import {
  DEFAULT_ATTEMPTS,
  DEFAULT_QUEUE,
  ensureRedisReachable,
  JOB_NAME,
  JOB_RETENTION_SECONDS,
  redisConnection,
  type RowJobData,
  type RowJobResult,
} from '../queue/jobs.js';
import { JobCancelled, JobError, type JobHandlers, type JobInput } from './model-worker.js';
import type { JobResult } from './protocol.js';

/** The batch name of the server's jobs: workers write them to OUT/serve/<run id>. */
export const SERVE_BATCH = 'serve';

function readConfig(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new FileError(`${path}: missing (a diffusers model folder has vae/config.json and unet/config.json)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new FileError(`${path}: not valid JSON (${(cause as Error).message})`, { cause });
  }
}

/** The model's description and size multiple (VAE factor x UNet downsampling) from its config files, without loading it. */
export function modelInfo(model: string): { model: Record<string, unknown>; sizeMultiple: number } {
  const source = resolveModelSource(model);
  const count = (file: string, key: string): number => {
    const v = readConfig(join(source.path, file))[key];
    if (!Array.isArray(v) || v.length === 0) throw new FileError(`${join(source.path, file)}: ${key} is not a non-empty list`);
    return v.length;
  };
  const sizeMultiple = 2 ** (count(join('vae', 'config.json'), 'block_out_channels') - 1) * 2 ** (count(join('unet', 'config.json'), 'down_block_types') - 1);
  return { model: { ...source }, sizeMultiple };
}

const content = (name: string, data: Uint8Array): { name: string; base64: string } => ({ name, base64: Buffer.from(data).toString('base64') });

/** The row job of a server job. */
export function serveJobData(input: JobInput): RowJobData {
  const files = { structure: input.structure, appearance: input.appearance, structureMask: input.structureMask, appearanceMask: input.appearanceMask };
  const hash = createHash('sha256').update(JSON.stringify(input.options));
  for (const [k, v] of Object.entries(files)) if (v !== undefined) hash.update(k).update(v);
  return {
    batch: SERVE_BATCH,
    row: 1,
    line: 0,
    id: input.id,
    optionsHash: hash.digest('hex'),
    structure: content('structure.png', input.structure),
    appearance: content('appearance.png', input.appearance),
    ...(input.structureMask === undefined ? {} : { structureMask: content('structure-mask.png', input.structureMask) }),
    ...(input.appearanceMask === undefined ? {} : { appearanceMask: content('appearance-mask.png', input.appearanceMask) }),
    options: input.options as RowJobData['options'],
    given: { featRange: 'featRange' in input.options, adainRange: 'adainRange' in input.options },
  };
}

interface Pending {
  handlers: JobHandlers;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
  /** Settles once the job is on the queue. */
  added?: Promise<unknown>;
}

/** Runs the server's jobs on the queue's workers; the same run / cancel / close as ModelWorker. */
/** The cache record of a worker's run.json; 'unknown' where it says nothing. */
function runCache(value: unknown): JobResult['cache'] {
  const c = (typeof value === 'object' && value !== null ? value : {}) as { dir?: unknown; inversion?: { app?: unknown; struct?: unknown } };
  const field = (v: unknown): string => (typeof v === 'string' ? v : 'unknown');
  return { inversion: { app: field(c.inversion?.app), struct: field(c.inversion?.struct) }, dir: field(c.dir) };
}

export class QueueClient {
  private readonly pending = new Map<string, Pending>();

  private constructor(
    private readonly queue: Queue<RowJobData, RowJobResult>,
    private readonly events: QueueEvents,
    private readonly runsDir: string,
    private readonly onStatus: (message: string) => void,
  ) {
    events.on('active', ({ jobId }) => {
      if (this.pending.has(jobId)) onStatus(`job ${jobId}: taken by a queue worker`);
    });
    events.on('progress', ({ jobId, data }) => {
      const p = this.pending.get(jobId);
      const e = data as Partial<ProgressEvent> | number;
      if (p !== undefined && typeof e === 'object' && typeof e.phase === 'string') p.handlers.onProgress(e as ProgressEvent);
    });
    events.on('completed', ({ jobId, returnvalue }) => this.completed(jobId, returnvalue as unknown as RowJobResult | string));
    events.on('failed', ({ jobId, failedReason }) => {
      const p = this.pending.get(jobId);
      if (p === undefined) return;
      // A failed attempt is retried by BullMQ; the job is failed once its attempts are spent.
      void this.queue.getJob(jobId).then(
        (job) => {
          if (job !== undefined && job.attemptsMade < (job.opts.attempts ?? 1) && !job.finishedOn) return;
          this.pending.delete(jobId);
          p.reject(new JobError({ name: 'QueueError', code: 'E_QUEUE', message: failedReason }));
        },
        (e: Error) => onStatus(`job ${jobId}: failed on the queue (${failedReason}); its state cannot be read (${e.message})`),
      );
    });
    events.on('removed', ({ jobId }) => {
      const p = this.pending.get(jobId);
      if (p === undefined) return;
      this.pending.delete(jobId);
      p.reject(new JobCancelled(`job ${jobId} cancelled`));
    });
  }

  /** Connect (a QueueError naming the URL when Redis cannot be reached). */
  static async open(redis: string, queueName: string | undefined, runsDir: string, onStatus: (message: string) => void): Promise<QueueClient> {
    await ensureRedisReachable(redis);
    const name = queueName ?? DEFAULT_QUEUE;
    const queue = new Queue<RowJobData, RowJobResult>(name, { connection: redisConnection(redis) });
    const events = new QueueEvents(name, { connection: redisConnection(redis) });
    await events.waitUntilReady();
    return new QueueClient(queue, events, runsDir, onStatus);
  }

  private completed(jobId: string, value: RowJobResult | string): void {
    const p = this.pending.get(jobId);
    if (p === undefined) return;
    this.pending.delete(jobId);
    const result = typeof value === 'string' ? (JSON.parse(value) as RowJobResult) : value;
    const record = join(this.runsDir, jobId, 'run.json');
    if (!existsSync(record)) {
      p.reject(
        new JobError({
          name: 'FileError',
          code: 'E_FILE',
          message: `the queue worker ${result.worker} wrote ${result.outDir}, but ${record} does not exist: serve --out must be the workers' --out (a shared folder)`,
        }),
      );
      return;
    }
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(readFileSync(record, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      p.reject(new JobError({ name: 'FileError', code: 'E_FILE', message: `${record}: unreadable (${(e as Error).message})` }));
      return;
    }
    p.resolve({
      files: [],
      matches: null,
      options: r['options'] as JobResult['options'],
      model: (r['model'] ?? {}) as Record<string, unknown>,
      timings: (r['timings'] ?? {}) as Record<string, number>,
      // What the worker's run.json records (its sizes and its own cache folder), never guessed.
      sizes: (r['sizes'] ?? {}) as JobResult['sizes'],
      cache: runCache(r['cache']),
    });
  }

  run(input: JobInput, handlers: JobHandlers): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      const pending: Pending = { handlers, resolve, reject };
      this.pending.set(input.id, pending);
      pending.added = this.queue
        .add(JOB_NAME, serveJobData(input), {
          jobId: input.id,
          attempts: DEFAULT_ATTEMPTS,
          backoff: { type: 'fixed', delay: 1000 },
          removeOnComplete: { age: JOB_RETENTION_SECONDS },
          removeOnFail: { age: JOB_RETENTION_SECONDS },
        })
        .then(() => this.onStatus(`job ${input.id}: on the queue ${this.queue.name}`))
        .catch((e: Error) => {
          this.pending.delete(input.id);
          reject(new JobError({ name: 'QueueError', code: 'E_QUEUE', message: `cannot add the job to the queue: ${e.message}` }));
        });
    });
  }

  /** A job still waiting on the queue is removed; one a worker runs cannot be stopped from here (said in its events). */
  cancel(id: string): void {
    void Promise.resolve(this.pending.get(id)?.added)
      .then(() => this.queue.remove(id))
      .then((n) => {
        if (n === 0) this.onStatus(`job ${id}: a queue worker is running it; it cannot be cancelled from the server`);
        else {
          const p = this.pending.get(id);
          this.pending.delete(id);
          p?.reject(new JobCancelled(`job ${id} cancelled`));
        }
      })
      .catch((e: Error) => this.onStatus(`job ${id}: cannot cancel (${e.message})`));
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.close();
  }
}
