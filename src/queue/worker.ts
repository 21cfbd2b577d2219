/**
 * A queue worker: takes row jobs (jobs.ts) one at a time and runs them on one loaded pipeline with the batch row
 * runner, writing OUT/<batch>/<id>. Progress goes back through the queue (job.updateProgress); a failure is thrown
 * back to BullMQ, which retries the job up to its attempts and then records it failed with the message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, type Job } from 'bullmq';
import { E4EError } from '../errors.js';
import type { TransferOptions } from '../pipeline/options.js';
import type { TransferPipeline } from '../pipeline/pipeline.js';
import { rowOutputDone, runBatchRow } from '../batch/row-runner.js';
import { DEFAULT_QUEUE, materializeRow, redisConnection, type RowJobData, type RowJobResult } from './jobs.js';

export interface QueueWorkerOptions {
  redis: string;
  queue?: string;
  outDir: string;
  pipeline: TransferPipeline;
  batchOptions?: Partial<Pick<TransferOptions, 'device' | 'precision' | 'cacheDir'>>;
  /** ms a job's lock lasts without renewal (BullMQ lockDuration; default 30000). */
  lockDuration?: number;
  /** ms between stalled-job checks (default 30000). */
  stalledInterval?: number;
  log?: (line: string) => void;
  /** This worker's name (default host:pid), recorded in each job's result. */
  name?: string;
}

export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}

/** Start a worker; close it with `await worker.close()` (waits for the current job). */
export function startQueueWorker(o: QueueWorkerOptions): Worker<RowJobData, RowJobResult> {
  const name = o.name ?? workerName();
  const log = o.log ?? (() => undefined);
  const processor = async (job: Job<RowJobData, RowJobResult>, _token?: string, signal?: AbortSignal): Promise<RowJobResult> => {
    const start = performance.now();
    const data = job.data;
    const tmp = mkdtempSync(join(tmpdir(), 'e4e-job-'));
    try {
      const row = materializeRow(data, tmp, o.batchOptions ?? {});
      const batchDir = join(o.outDir, data.batch);
      const outDir = join(batchDir, row.id);
      if (rowOutputDone(outDir, row.optionsHash)) {
        log(`worker ${name}: job ${job.id}: found done in ${outDir}`);
        return { outDir, found: true, worker: name, seconds: (performance.now() - start) / 1000 };
      }
      log(`worker ${name}: job ${job.id} (attempt ${job.attemptsMade + 1}): ${data.structure.name} + ${data.appearance.name}`);
      let last = 0;
      const result = await runBatchRow(o.pipeline, row, batchDir, {
        command: 'worker',
        ...(signal === undefined ? {} : { signal }),
        // The queue lock is ours: a run folder lock left by another machine's worker belongs to a job it lost.
        takeOverLock: (holder) => holder.host !== undefined && holder.host !== hostname(),
        onProgress: (e) => {
          const now = performance.now();
          if (e.step < e.total && now - last < 250) return;
          last = now;
          log(`worker ${name}: job ${job.id}: ${e.phase} ${e.step}/${e.total}`);
          void job.updateProgress({ phase: e.phase, step: e.step, total: e.total }).catch(() => undefined);
        },
      });
      const seconds = (performance.now() - start) / 1000;
      if (result.found) {
        log(`worker ${name}: job ${job.id}: found done in ${outDir} (another worker finished it)`);
        return { outDir, found: true, worker: name, seconds };
      }
      log(`worker ${name}: job ${job.id}: computed in ${seconds.toFixed(1)} s -> ${result.outDir}`);
      return {
        outDir: result.outDir,
        found: false,
        worker: name,
        seconds,
        ...(result.inversionCache === undefined ? {} : { inversionCache: result.inversionCache }),
      };
    } catch (e) {
      const message = e instanceof E4EError ? `${e.name} [${e.code}]: ${e.message}` : e instanceof Error ? e.message : String(e);
      log(`worker ${name}: job ${job.id}: failed (attempt ${job.attemptsMade + 1}): ${message}`);
      throw new Error(`row ${data.row} (${data.id}): ${message}`, { cause: e });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  const worker = new Worker<RowJobData, RowJobResult>(o.queue ?? DEFAULT_QUEUE, processor, {
    connection: redisConnection(o.redis),
    concurrency: 1,
    name,
    ...(o.lockDuration === undefined ? {} : { lockDuration: o.lockDuration }),
    ...(o.stalledInterval === undefined ? {} : { stalledInterval: o.stalledInterval }),
  });
  // A job whose lock could not be renewed (this process was too slow to renew it) may be another worker's by now:
  // stop computing it rather than run the row twice at once.
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) {
      log(`worker ${name}: job ${id}: lost its queue lock; abandoning it (the queue gives it to a worker again)`);
      worker.cancelJob(id, 'lost the queue lock');
    }
  });
  return worker;
}
