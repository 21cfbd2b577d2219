/**
 * The transfer worker thread: loads the pipeline once (model fixed at server start) and runs one job at a time,
 * posting progress, latent previews and the finished files (the same pictures a CLI run writes) to the server.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AbortError, E4EError, InvalidParameterError } from '../errors.js';
import { loadPipeline, type TransferPipeline } from '../pipeline/pipeline.js';
import { resultFiles } from '../pipeline/result-files.js';
import { latentToRgb } from './latent-preview.js';
import type { JobRequest, JobResult, MainMessage, WorkerConfig, WorkerError, WorkerMessage } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('transfer-worker.js runs as a worker thread (src/server/model-worker.ts starts it)');
const config = workerData as WorkerConfig;
const post = (m: WorkerMessage): void => port.postMessage(m);

function toWorkerError(e: unknown): WorkerError {
  if (e instanceof E4EError) return { name: e.name, code: e.code, message: e.message, parameter: e instanceof InvalidParameterError ? e.parameter : undefined };
  return { name: 'Error', code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

async function runJob(pipeline: TransferPipeline, job: JobRequest): Promise<JobResult> {
  const controller = new AbortController();
  const cancel = new Int32Array(job.cancel);
  const checkCancel = (): void => {
    if (Atomics.load(cancel, 0) === 1) controller.abort();
  };
  const options: Record<string, unknown> = { ...job.options };
  if (job.structureMask !== undefined) options['structureMask'] = Buffer.from(job.structureMask);
  if (job.appearanceMask !== undefined) options['appearanceMask'] = Buffer.from(job.appearanceMask);
  if (config.cacheDir !== undefined) options['cacheDir'] = config.cacheDir;
  checkCancel();
  if (controller.signal.aborted) throw new AbortError('transfer aborted');
  const result = await pipeline.transfer({ structure: Buffer.from(job.structure), appearance: Buffer.from(job.appearance) }, options as { domain: string }, {
    signal: controller.signal,
    onProgress: (event) => {
      checkCancel();
      post({ type: 'progress', id: job.id, event });
    },
    onLatent: ({ step, total, latent }) => {
      if (step % job.previewEvery !== 0 && step !== total) return;
      const { pixels, width, height } = latentToRgb(latent);
      post({ type: 'preview', id: job.id, step, total, width, height, rgb: pixels });
    },
  });
  const m = result.metadata;
  const matches = result.matches;
  return {
    files: await resultFiles(result, { workingInputs: true }),
    matches:
      matches === undefined
        ? null
        : { site: matches.site, iteration: matches.iteration, width: matches.width, height: matches.height, indices: Array.from(matches.indices, Number) },
    options: m.options,
    model: { ...m.model },
    timings: result.timings,
    sizes: { structure: m.structureSize, appearance: m.appearanceSize, working: m.workingSize, latent: m.latentSize },
    cache: { inversion: { app: m.inversionCache.app, struct: m.inversionCache.struct }, dir: m.inversionCache.dir },
  };
}

async function start(): Promise<void> {
  let pipeline: TransferPipeline;
  try {
    const load: Parameters<typeof loadPipeline>[1] = { keepSessions: true, onStatus: (message) => post({ type: 'status', message }) };
    if (config.cacheDir !== undefined) load.cacheDir = config.cacheDir;
    if (config.device !== undefined) load.device = config.device;
    if (config.precision !== undefined) load.precision = config.precision;
    if (config.threads !== undefined) load.threads = config.threads;
    pipeline = await loadPipeline(config.model, load);
  } catch (e) {
    post({ type: 'load-failed', error: toWorkerError(e) });
    return;
  }
  post({ type: 'ready', model: { ...pipeline.source }, sizeMultiple: pipeline.sizeMultiple });
  let chain = Promise.resolve();
  port!.on('message', (m: MainMessage) => {
    if (m.type === 'close') {
      chain = chain.then(async () => {
        await pipeline.dispose();
        port!.close();
      });
      return;
    }
    chain = chain.then(async () => {
      try {
        const result = await runJob(pipeline, m);
        post({ type: 'done', id: m.id, result });
      } catch (e) {
        if (e instanceof AbortError) post({ type: 'cancelled', id: m.id });
        else post({ type: 'failed', id: m.id, error: toWorkerError(e) });
      }
    });
  });
}

void start();
