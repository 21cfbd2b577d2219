/**
 * `eye4eye submit`: parse and validate a batch file (batch-rows.ts: a bad row is reported and not enqueued), enqueue
 * one job per row (jobs.ts; the job id is batch + row id + options hash, so submitting the same batch again adds
 * nothing), then follow the jobs until every one is completed or failed.
 */
import { basename, extname } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { readBatchFile } from '../batch/batch-file.js';
import { parseRows } from '../batch/batch-rows.js';
import {
  DEFAULT_ATTEMPTS,
  DEFAULT_QUEUE,
  JOB_NAME,
  JOB_RETENTION_SECONDS,
  redisConnection,
  rowJobData,
  rowJobId,
  safeName,
  type RowJobData,
  type RowJobResult,
} from './jobs.js';

export interface SubmitOptions {
  redis: string;
  queue?: string;
  file: string;
  /** The batch's name (the results go to the workers' OUT/<name>/<row id>); default the file's name. */
  name?: string;
  attempts?: number;
  /** Failed jobs of an earlier submission of these rows are retried (else reported failed again). */
  retryFailed?: boolean;
  /** Follow the jobs until they finish (default true). */
  follow?: boolean;
  log?: (line: string) => void;
  pollMs?: number;
}

export interface SubmittedRow {
  row: number;
  id: string;
  jobId?: string;
  status: 'done' | 'failed' | 'pending';
  error?: string;
  result?: RowJobResult;
  attempts?: number;
}

export interface SubmitResult {
  batch: string;
  rows: SubmittedRow[];
}

export async function submitBatch(o: SubmitOptions): Promise<SubmitResult> {
  const file = readBatchFile(o.file);
  const batch = safeName(o.name ?? basename(file.path, extname(file.path)));
  const log = o.log ?? (() => undefined);
  // The model is the worker's: it is left out of the hash here (the worker checks the output by this hash).
  const { rows, problems } = parseRows(file.rows, file.path, { batchOptions: {}, model: '' });
  const result: SubmittedRow[] = problems.map((p) => ({ row: p.row, id: p.id, status: 'failed', error: p.error }));
  for (const p of problems) log(`submit: not enqueued: ${p.error}`);
  const connection = redisConnection(o.redis);
  const queueName = o.queue ?? DEFAULT_QUEUE;
  const queue = new Queue<RowJobData, RowJobResult>(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  try {
    await events.waitUntilReady();
    const attempts = o.attempts ?? DEFAULT_ATTEMPTS;
    const ids = new Map<string, SubmittedRow>();
    for (const row of rows) {
      const jobId = rowJobId(batch, row);
      const existing = await Job.fromId<RowJobData, RowJobResult>(queue, jobId);
      if (existing !== undefined && o.retryFailed === true && (await existing.getState()) === 'failed') {
        await existing.retry('failed');
        log(`submit: retrying ${jobId}`);
      } else if (existing === undefined) {
        await queue.add(JOB_NAME, rowJobData(batch, row), {
          jobId,
          attempts,
          backoff: { type: 'fixed', delay: 200 },
          // Finished jobs (with their images) leave Redis after a week; a row submitted again later is found done
          // in the workers' output folder without being computed.
          removeOnComplete: { age: JOB_RETENTION_SECONDS },
          removeOnFail: { age: JOB_RETENTION_SECONDS },
        });
      }
      const entry: SubmittedRow = { row: row.row, id: row.id, jobId, status: 'pending' };
      ids.set(jobId, entry);
      result.push(entry);
    }
    result.sort((a, b) => a.row - b.row);
    log(
      `submit: batch ${batch}: ${rows.length} job${rows.length === 1 ? '' : 's'} on queue ${queueName}${problems.length > 0 ? `, ${problems.length} bad row(s) not enqueued` : ''}`,
    );
    if (o.follow === false) return { batch, rows: result };
    events.on('progress', ({ jobId, data }) => {
      const p = data as { phase?: string; step?: number; total?: number };
      if (ids.has(jobId) && p.step === p.total) log(`submit: ${ids.get(jobId)!.id}: ${p.phase} ${p.step}/${p.total}`);
    });
    const pending = new Set(ids.keys());
    while (pending.size > 0) {
      for (const jobId of [...pending]) {
        const job = await Job.fromId<RowJobData, RowJobResult>(queue, jobId);
        const entry = ids.get(jobId)!;
        if (job === undefined) {
          entry.status = 'failed';
          entry.error = `job ${jobId} disappeared from the queue`;
        } else {
          const state = await job.getState();
          if (state === 'completed') {
            entry.status = 'done';
            entry.result = job.returnvalue;
          } else if (state === 'failed') {
            entry.status = 'failed';
            entry.error = job.failedReason;
          } else continue;
          entry.attempts = job.attemptsMade;
        }
        pending.delete(jobId);
        const done = result.filter((r) => r.status === 'done').length;
        const failed = result.filter((r) => r.status === 'failed').length;
        log(
          `submit: ${entry.id}: ${entry.status === 'done' ? `done (${entry.result?.worker ?? '?'}${entry.result?.found === true ? ', found done' : ''})` : `FAILED after ${entry.attempts ?? 0} attempt(s): ${entry.error}`}; ${done} done, ${failed} failed, ${pending.size} to go`,
        );
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, o.pollMs ?? 300));
    }
    return { batch, rows: result };
  } finally {
    await events.close();
    await queue.close();
  }
}
