/**
 * Messages between the server (main thread) and the transfer worker thread. Model work runs in the worker because
 * onnxruntime-node's run() blocks the event loop of the thread that calls it; the main thread stays free for HTTP.
 * Cancelling goes through a SharedArrayBuffer flag, which the worker reads at every progress event (a posted
 * message would wait behind the blocking run).
 */
import type { ProgressEvent } from '../pipeline/pipeline.js';
import type { TransferOptions } from '../pipeline/options.js';

export interface WorkerConfig {
  /** Diffusers folder or Hugging Face id (resolved when the server starts, never from a request). */
  model: string;
  cacheDir?: string;
  device?: TransferOptions['device'];
  precision?: TransferOptions['precision'];
  threads?: number;
}

export interface JobRequest {
  type: 'job';
  id: string;
  structure: Uint8Array;
  appearance: Uint8Array;
  structureMask?: Uint8Array | undefined;
  appearanceMask?: Uint8Array | undefined;
  /** Validated options, without masks, device, precision or cacheDir (the worker's own). */
  options: Record<string, unknown>;
  /** Int32Array(1) over it: 1 = cancel. */
  cancel: SharedArrayBuffer;
  /** Send a latent preview every this many transfer steps (and at the last). */
  previewEvery: number;
}

export interface OutputFile {
  name: string;
  data: Uint8Array;
}

export interface JobResult {
  files: OutputFile[];
  /** The match indices the run recorded (out token -> appearance token, < 0 none), or null. */
  matches: { site: string; iteration: number; width: number; height: number; indices: number[] } | null;
  options: TransferOptions;
  model: Record<string, unknown>;
  timings: Record<string, number>;
  sizes: Record<string, { width: number; height: number }>;
  cache: { inversion: { app: string; struct: string }; dir: string };
}

export interface WorkerError {
  name: string;
  code: string;
  message: string;
  parameter?: string | undefined;
}

export type WorkerMessage =
  | { type: 'ready'; model: Record<string, unknown>; sizeMultiple: number }
  | { type: 'status'; message: string }
  | { type: 'load-failed'; error: WorkerError }
  | { type: 'progress'; id: string; event: ProgressEvent }
  | { type: 'preview'; id: string; step: number; total: number; width: number; height: number; rgb: Uint8Array }
  | { type: 'done'; id: string; result: JobResult }
  | { type: 'failed'; id: string; error: WorkerError }
  | { type: 'cancelled'; id: string };

export type MainMessage = JobRequest | { type: 'close' };
