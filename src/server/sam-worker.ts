/**
 * The SAM-HQ worker thread: opens the segmenter given at server start (src/pipeline/sam-segmenter.ts) and answers
 * embed and segment requests one after another. It runs beside the transfer worker, so a mask can be made while a
 * transfer runs; the segmenter caches embeddings by image content, so a new prompt on the same image only decodes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { E4EError, InvalidParameterError } from '../errors.js';
import { obtainSamModel } from '../pipeline/model-source.js';
import { SamSegmenter } from '../pipeline/sam-segmenter.js';
import type { SegmentImage, SegmentPrompt } from './segment.js';

export interface SamWorkerConfig {
  /** SAM-HQ weights: folder, .pth or hub id. */
  weights: string;
  cacheDir?: string;
  threads?: number;
}

export type SamRequest =
  { type: 'embed'; id: number; image: SegmentImage } | { type: 'segment'; id: number; image: SegmentImage; prompt: SegmentPrompt } | { type: 'close' };

export type SamReply =
  | { type: 'ready' }
  | { type: 'open-failed'; error: { name: string; code: string; message: string } }
  | { type: 'embedded'; id: number }
  | { type: 'mask'; id: number; mask: Uint8Array; width: number; height: number; score: number }
  | { type: 'failed'; id: number; error: { name: string; code: string; message: string; parameter?: string | undefined } };

const port = parentPort;
if (port === null) throw new Error('sam-worker.js runs as a worker thread (src/server/sam-client.ts starts it)');
const config = workerData as SamWorkerConfig;
const post = (m: SamReply): void => port.postMessage(m);

function describe(e: unknown): { name: string; code: string; message: string; parameter?: string | undefined } {
  if (e instanceof E4EError) return { name: e.name, code: e.code, message: e.message, parameter: e instanceof InvalidParameterError ? e.parameter : undefined };
  return { name: 'Error', code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

async function start(): Promise<void> {
  let sam: SamSegmenter;
  try {
    // A folder, an official .pth, or a SamHQModel id from the Hugging Face cache (downloaded when missing), as `eye4eye mask`.
    const source = await obtainSamModel(config.weights);
    const options: Parameters<typeof SamSegmenter.open>[1] = {};
    if (config.cacheDir !== undefined) options.cacheDir = config.cacheDir;
    if (config.threads !== undefined) options.threads = config.threads;
    sam = SamSegmenter.open(source.path, options);
  } catch (e) {
    post({ type: 'open-failed', error: describe(e) });
    return;
  }
  post({ type: 'ready' });
  let chain = Promise.resolve();
  port!.on('message', (m: SamRequest) => {
    chain = chain.then(async () => {
      if (m.type === 'close') {
        await sam.close();
        port!.close();
        return;
      }
      try {
        if (m.type === 'embed') {
          await sam.embed(m.image);
          post({ type: 'embedded', id: m.id });
        } else {
          const r = await sam.segment(m.image, m.prompt);
          post({ type: 'mask', id: m.id, mask: r.mask, width: r.width, height: r.height, score: r.score });
        }
      } catch (e) {
        post({ type: 'failed', id: m.id, error: describe(e) });
      }
    });
  });
}

void start();
