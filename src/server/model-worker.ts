/**
 * The main thread's side of the transfer worker (transfer-worker.ts): start it, wait until the model is loaded,
 * run one job at a time with callbacks for progress and previews, cancel through the shared flag, close.
 */
import { Worker } from 'node:worker_threads';
import { E4EError } from '../errors.js';
import type { ProgressEvent } from '../pipeline/pipeline.js';
import type { JobRequest, JobResult, MainMessage, WorkerConfig, WorkerError, WorkerMessage } from './protocol.js';

/** A job the worker could not run: carries the library's error name, code and message. */
export class JobError extends Error {
  constructor(readonly detail: WorkerError) {
    super(detail.message);
  }
}

/** The job was cancelled (AbortSignal in the worker). */
export class JobCancelled extends Error {}

export interface JobHandlers {
  onProgress: (event: ProgressEvent) => void;
  onPreview: (preview: { step: number; total: number; width: number; height: number; rgb: Uint8Array }) => void;
}

export interface JobInput extends Omit<JobRequest, 'type' | 'cancel' | 'previewEvery'> {
  previewEvery?: number;
}

interface Pending {
  handlers: JobHandlers;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

export class ModelWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<string, Pending>();
  private readonly cancels = new Map<string, Int32Array>();
  readonly ready: Promise<{ model: Record<string, unknown>; sizeMultiple: number }>;
  private exited = false;

  constructor(config: WorkerConfig, onStatus: (message: string) => void = () => {}) {
    this.worker = new Worker(new URL('./transfer-worker.js', import.meta.url), { workerData: config });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') resolve({ model: m.model, sizeMultiple: m.sizeMultiple });
        else if (m.type === 'load-failed') reject(new JobError(m.error));
        else if (m.type === 'status') onStatus(m.message);
        else this.onJobMessage(m);
      });
      this.worker.on('error', (e) => {
        reject(e);
        this.failAll(e);
      });
      this.worker.on('exit', (code) => {
        this.exited = true;
        const e = new E4EError('E_RUNTIME', `the transfer worker thread exited (code ${code})`);
        reject(e);
        this.failAll(e);
      });
    });
    this.ready.catch(() => {});
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private onJobMessage(m: Exclude<WorkerMessage, { type: 'ready' | 'load-failed' | 'status' }>): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    if (m.type === 'progress') p.handlers.onProgress(m.event);
    else if (m.type === 'preview') p.handlers.onPreview(m);
    else {
      this.pending.delete(m.id);
      this.cancels.delete(m.id);
      if (m.type === 'done') p.resolve(m.result);
      else if (m.type === 'failed') p.reject(new JobError(m.error));
      else p.reject(new JobCancelled(`job ${m.id} cancelled`));
    }
  }

  /** Run one job (the caller queues: one at a time). */
  run(input: JobInput, handlers: JobHandlers): Promise<JobResult> {
    if (this.exited) return Promise.reject(new E4EError('E_RUNTIME', 'the transfer worker thread has exited'));
    const cancel = new SharedArrayBuffer(4);
    this.cancels.set(input.id, new Int32Array(cancel));
    const message: MainMessage = { type: 'job', ...input, cancel, previewEvery: input.previewEvery ?? 4 };
    return new Promise((resolve, reject) => {
      this.pending.set(input.id, { handlers, resolve, reject });
      this.worker.postMessage(message);
    });
  }

  /** Ask the running job to stop (it stops at its next step). */
  cancel(id: string): void {
    const flag = this.cancels.get(id);
    if (flag !== undefined) Atomics.store(flag, 0, 1);
  }

  async close(): Promise<void> {
    if (this.exited) return;
    for (const id of this.cancels.keys()) this.cancel(id);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies MainMessage);
    const timer = setTimeout(() => void this.worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
