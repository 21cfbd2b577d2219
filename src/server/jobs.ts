/**
 * The job queue: one job at a time on the model's worker, the others wait in order (their position is visible).
 * Every job keeps the history of its events, so a client that subscribes late (or reconnects) gets them all;
 * of the previews only the latest is kept.
 */
import sharp from 'sharp';
import type { ProgressEvent } from '../pipeline/pipeline.js';
import { HttpError } from './http.js';
import { JobCancelled, JobError, type JobInput, type ModelWorker } from './model-worker.js';
import type { JobResult } from './protocol.js';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobEvent {
  event: 'queued' | 'started' | 'status' | 'progress' | 'preview' | 'done' | 'failed' | 'cancelled';
  data: Record<string, unknown>;
}

export interface Job {
  readonly id: string;
  status: JobStatus;
  readonly createdAt: string;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  readonly domain: string;
  readonly events: JobEvent[];
  lastPreview: JobEvent | undefined;
  readonly subscribers: Set<(e: JobEvent) => void>;
  input: JobInput | undefined;
  files: string[];
}

/** Writes a finished job's files; returns their names. */
export type FinishJob = (job: Job, result: JobResult) => Promise<string[]>;

export interface JobSummary {
  id: string;
  status: JobStatus;
  position: number | null;
  createdAt: string;
  domain: string;
  elapsedSeconds: number | null;
  files: string[];
}

export class JobQueue {
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private running: Job | undefined;

  constructor(
    private readonly worker: Pick<ModelWorker, 'run' | 'cancel'>,
    private readonly finish: FinishJob,
    private readonly maxWaiting = 16,
  ) {}

  add(id: string, input: JobInput, domain: string): Job {
    if (this.waiting.length >= this.maxWaiting)
      throw new HttpError(503, 'E_QUEUE_FULL', `the queue is full (${this.maxWaiting} jobs waiting); try again later`);
    const job: Job = {
      id,
      status: 'queued',
      createdAt: new Date().toISOString(),
      startedAt: undefined,
      finishedAt: undefined,
      domain,
      events: [],
      lastPreview: undefined,
      subscribers: new Set(),
      input,
      files: [],
    };
    this.jobs.set(id, job);
    this.prune();
    this.waiting.push(job);
    this.emit(job, { event: 'queued', data: { position: this.waiting.length - (this.running === undefined ? 1 : 0) } });
    this.next();
    return job;
  }

  /** Forget the oldest finished jobs beyond `keepFinished` (their run folders stay under /api/runs). */
  private prune(keepFinished = 200): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined);
    for (const j of finished.slice(0, Math.max(finished.length - keepFinished, 0))) this.jobs.delete(j.id);
  }

  get(id: string): Job {
    const job = this.jobs.get(id);
    if (job === undefined) throw new HttpError(404, 'E_NOT_FOUND', `no job ${id} (jobs are kept until the server stops; past runs are under /api/runs)`);
    return job;
  }

  /** 0 = running, 1.. = waiting in that place, null = finished. */
  position(job: Job): number | null {
    if (job === this.running) return 0;
    const i = this.waiting.indexOf(job);
    return i < 0 ? null : i + 1;
  }

  summary(job: Job): JobSummary {
    const end = job.finishedAt ?? performance.now();
    return {
      id: job.id,
      status: job.status,
      position: this.position(job),
      createdAt: job.createdAt,
      domain: job.domain,
      elapsedSeconds: job.startedAt === undefined ? null : (end - job.startedAt) / 1000,
      files: job.files,
    };
  }

  list(): JobSummary[] {
    return [...this.jobs.values()].map((j) => this.summary(j));
  }

  cancel(id: string): Job {
    const job = this.get(id);
    if (job.status === 'queued') {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      this.settle(job, 'cancelled', { event: 'cancelled', data: { while: 'queued' } });
      this.announcePositions();
    } else if (job.status === 'running') {
      this.worker.cancel(id);
    } else {
      throw new HttpError(409, 'E_JOB_FINISHED', `job ${id} has already finished (${job.status})`);
    }
    return job;
  }

  subscribe(job: Job, fn: (e: JobEvent) => void): () => void {
    for (const e of job.events) fn(e);
    if (job.lastPreview !== undefined && job.status === 'running') fn(job.lastPreview);
    job.subscribers.add(fn);
    return () => job.subscribers.delete(fn);
  }

  /** A status line of the model (graph built or loaded) goes to the running job's events. */
  status(message: string): void {
    if (this.running !== undefined) this.emit(this.running, { event: 'status', data: { message } });
  }

  /** Whether a job is queued or running. */
  get busy(): boolean {
    return this.running !== undefined || this.waiting.length > 0;
  }

  private emit(job: Job, e: JobEvent): void {
    if (e.event === 'preview') job.lastPreview = e;
    else job.events.push(e);
    for (const fn of job.subscribers) fn(e);
  }

  private settle(job: Job, status: JobStatus, e: JobEvent): void {
    job.status = status;
    job.finishedAt = performance.now();
    job.input = undefined;
    job.lastPreview = undefined;
    this.emit(job, e);
    job.subscribers.clear();
  }

  private announcePositions(): void {
    for (const job of this.waiting) this.emit(job, { event: 'queued', data: { position: this.position(job) } });
  }

  private next(): void {
    if (this.running !== undefined) return;
    const job = this.waiting.shift();
    if (job === undefined) return;
    this.running = job;
    this.announcePositions();
    void this.start(job).finally(() => {
      this.running = undefined;
      this.next();
    });
  }

  private async start(job: Job): Promise<void> {
    const input = job.input!;
    job.status = 'running';
    job.startedAt = performance.now();
    this.emit(job, { event: 'started', data: {} });
    const elapsed = (): number => (performance.now() - job.startedAt!) / 1000;
    try {
      const result = await this.worker.run(input, {
        onProgress: (event: ProgressEvent) => this.emit(job, { event: 'progress', data: { ...event, elapsedSeconds: elapsed() } }),
        onPreview: (p) => {
          void sharp(Buffer.from(p.rgb), { raw: { width: p.width, height: p.height, channels: 3 } })
            .png()
            .toBuffer()
            .then((png) => {
              if (job.status !== 'running') return;
              const image = `data:image/png;base64,${png.toString('base64')}`;
              this.emit(job, { event: 'preview', data: { step: p.step, total: p.total, width: p.width, height: p.height, image } });
            });
        },
      });
      job.files = await this.finish(job, result);
      this.settle(job, 'done', { event: 'done', data: { id: job.id, files: job.files, matches: result.matches !== null, elapsedSeconds: elapsed() } });
    } catch (e) {
      if (e instanceof JobCancelled) this.settle(job, 'cancelled', { event: 'cancelled', data: { while: 'running' } });
      else if (e instanceof JobError) this.settle(job, 'failed', { event: 'failed', data: { error: { ...e.detail } } });
      else this.settle(job, 'failed', { event: 'failed', data: { error: { name: 'Error', code: 'E_INTERNAL', message: (e as Error).message } } });
    }
  }
}
