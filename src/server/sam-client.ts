/** The main thread's side of the SAM-HQ worker (sam-worker.ts): a Segmenter for the server's /api/segment. */
import { Worker } from 'node:worker_threads';
import { E4EError, InvalidParameterError } from '../errors.js';
import type { SamReply, SamRequest, SamWorkerConfig } from './sam-worker.js';
import type { SegmentImage, SegmentPrompt, Segmenter } from './segment.js';

type Result = { mask: Uint8Array; width: number; height: number; score: number };

/** A SAM-HQ segmenter in its own worker thread; `open` resolves once the weights are read and checked. */
export class WorkerSegmenter implements Segmenter {
  private readonly pending = new Map<number, { resolve: (r: Result | undefined) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited = false;

  private constructor(private readonly worker: Worker) {}

  static async open(config: SamWorkerConfig): Promise<WorkerSegmenter> {
    const worker = new Worker(new URL('./sam-worker.js', import.meta.url), { workerData: config });
    const client = new WorkerSegmenter(worker);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: SamReply) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'open-failed') reject(new E4EError(m.error.code as E4EError['code'], m.error.message));
        else client.reply(m);
      });
      worker.on('error', (e) => {
        reject(e);
        client.failAll(e);
      });
      worker.on('exit', (code) => {
        client.exited = true;
        const e = new E4EError('E_RUNTIME', `the SAM-HQ worker thread exited (code ${code})`);
        reject(e);
        client.failAll(e);
      });
    }).catch(async (e: Error) => {
      await worker.terminate();
      throw e;
    });
    return client;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private reply(m: Exclude<SamReply, { type: 'ready' | 'open-failed' }>): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (m.type === 'mask') p.resolve({ mask: m.mask, width: m.width, height: m.height, score: m.score });
    else if (m.type === 'embedded') p.resolve(undefined);
    else if (m.error.code === 'E_INVALID_PARAMETER')
      p.reject(new InvalidParameterError(m.error.message, m.error.parameter === undefined ? {} : { parameter: m.error.parameter }));
    else p.reject(new E4EError(m.error.code as E4EError['code'], m.error.message));
  }

  private request(m: Exclude<SamRequest, { type: 'close' }>): Promise<Result | undefined> {
    if (this.exited) return Promise.reject(new E4EError('E_RUNTIME', 'the SAM-HQ worker thread has exited'));
    return new Promise((resolve, reject) => {
      this.pending.set(m.id, { resolve, reject });
      this.worker.postMessage(m);
    });
  }

  async embed(image: SegmentImage): Promise<void> {
    await this.request({ type: 'embed', id: this.nextId++, image });
  }

  async segment(image: SegmentImage, prompt: SegmentPrompt): Promise<Result> {
    return (await this.request({ type: 'segment', id: this.nextId++, image, prompt }))!;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies SamRequest);
    const timer = setTimeout(() => void this.worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
