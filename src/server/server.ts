/**
 * `eye4eye serve`: a local web page and a JSON HTTP API over the library (docs/api.md). The model is loaded in a
 * worker thread when the server starts; jobs run one at a time on it; progress goes out as Server-Sent Events;
 * finished runs are written to the output folder exactly like CLI runs (plus matches.json for the page's
 * correspondence view).
 *
 *   browser ──JSON──▶ routes (same-origin checks, upload checks, the library's option validation)
 *                        │ JobQueue ──postMessage──▶ transfer worker (loadPipeline, transfer)
 *                        ◀──SSE── progress, previews, done ◀──────────────┘
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { TransferOptions } from '../pipeline/options.js';
import { ORT_VERSION } from '../runtime/session.js';
import { VERSION } from '../version.js';
import { checkOptions, formFields, optionsFromForm } from './form.js';
import { E4EError, FileError, InvalidParameterError } from '../errors.js';
import { prepareTransferInputs } from '../pipeline/pipeline.js';
import { checkHost, checkSameOrigin, HttpError, readJson, SECURITY_HEADERS, sendError, sendJson } from './http.js';
import { JobQueue, type Job, type JobEvent } from './jobs.js';
import { ModelWorker } from './model-worker.js';
import type { JobResult, WorkerConfig } from './protocol.js';
import { modelInfo, QueueClient, SERVE_BATCH } from './queue-client.js';
import { checkRunId, listRuns, newRunId, readRunFile, writeRunFolder } from './run-store.js';
import { WorkerSegmenter } from './sam-client.js';
import { embedRequest, segmentRequest } from './segment.js';
import { DEFAULT_UPLOAD_LIMITS, readUpload, type UploadLimits } from './uploads.js';

export interface ServeOptions extends WorkerConfig {
  /** Output folder: one sub-folder per run. */
  outDir: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  limits?: UploadLimits;
  /** Jobs that may wait behind the running one. */
  maxWaiting?: number;
  /** SAM-HQ weights (folder or .pth) for masks from a box or clicks (absent: /api/segment answers 501). */
  samModel?: string;
  onStatus?: (message: string) => void;
  /** redis:// URL: jobs go to this BullMQ queue (`eye4eye worker`) instead of the local transfer worker. */
  redis?: string;
  /** The queue's name (default eye4eye). */
  queue?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  server: Server;
  model: Record<string, unknown>;
  close: () => Promise<void>;
}

/** Package root (dist/src/server/server.js -> three levels up). */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The page's files: web/static (HTML, CSS) and the browser code compiled by `npm run build` into dist/web. */
function staticAssets(): Map<string, { path: string; type: string }> {
  const assets = new Map<string, { path: string; type: string }>();
  const add = (dir: string, ext: string, type: string): void => {
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) if (f.endsWith(ext)) assets.set(f, { path: join(dir, f), type });
  };
  add(join(PACKAGE_ROOT, 'web', 'static'), '.html', 'text/html; charset=utf-8');
  add(join(PACKAGE_ROOT, 'web', 'static'), '.css', 'text/css; charset=utf-8');
  add(join(PACKAGE_ROOT, 'web', 'static'), '.svg', 'image/svg+xml');
  add(join(PACKAGE_ROOT, 'dist', 'web'), '.js', 'text/javascript; charset=utf-8');
  if (!assets.has('index.html') || !assets.has('app.js')) {
    throw new FileError(`${PACKAGE_ROOT}: the page's files are missing (web/static/index.html, dist/web/app.js)`, { hint: 'run npm run build' });
  }
  return assets;
}

/** Host headers this server answers to (anything else is refused: no DNS rebinding). */
function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set<string>([host]);
  if (host === '127.0.0.1' || host === 'localhost' || host === '0.0.0.0' || host === '::') names.add('127.0.0.1').add('localhost');
  if (host === '::1' || host === '::') names.add('[::1]');
  if (host === '0.0.0.0' || host === '::') {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
  }
  return new Set([...names].map((n) => `${n.includes(':') && !n.startsWith('[') ? `[${n}]` : n}:${port}`.toLowerCase()));
}

const JOB_FIELDS = ['structure', 'appearance', 'structureMask', 'appearanceMask', 'options'] as const;

interface Context {
  assets: Map<string, { path: string; type: string }>;
  outDir: string;
  limits: UploadLimits;
  maxBody: number;
  ready: { model: Record<string, unknown>; sizeMultiple: number };
  queue: JobQueue;
  segmenter: WorkerSegmenter | undefined;
}

const API_ROUTES = /^\/api\/(info|options|jobs|runs|segment|embed)\b/;

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'E_URL', `malformed URL part '${part}'`);
  }
}

/** The size must also be a multiple of this model's VAE x UNet factor. */
function checkSizeMultiple(options: TransferOptions, multiple: number): TransferOptions {
  if (options.size % multiple !== 0) {
    throw new HttpError(400, 'E_INVALID_PARAMETER', `Expected multiple of ${multiple} for this model for size but received ${options.size}`, {
      parameter: 'size',
      flag: 'size',
    });
  }
  return options;
}

async function handle(ctx: Context, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const { queue, outDir, limits, maxBody, ready, segmenter } = ctx;
  const method = req.method ?? 'GET';
  const route = (m: string, pattern: RegExp): RegExpExecArray | null => (method === m ? pattern.exec(path) : null);
  let match: RegExpExecArray | null;
  if (route('GET', /^\/api\/info$/)) return sendJson(res, 200, info(ready, outDir, limits, segmenter !== undefined));
  if (route('POST', /^\/api\/options$/)) {
    const options = checkSizeMultiple(optionsFromForm((await readJson(req, maxBody))['form']), ready.sizeMultiple);
    return sendJson(res, 200, { options: requestOptions(options) });
  }
  if (route('GET', /^\/api\/jobs$/)) return sendJson(res, 200, { jobs: queue.list() });
  if (route('POST', /^\/api\/jobs$/)) {
    const job = await createJob(await readJson(req, maxBody), queue, limits, ready.sizeMultiple);
    return sendJson(res, 202, { job: queue.summary(job), events: `/api/jobs/${job.id}/events` });
  }
  if ((match = route('GET', /^\/api\/jobs\/([^/]+)$/))) return sendJson(res, 200, { job: queue.summary(queue.get(decodePart(match[1]!))) });
  if ((match = route('GET', /^\/api\/jobs\/([^/]+)\/events$/))) return streamEvents(req, res, queue, queue.get(decodePart(match[1]!)));
  if ((match = route('POST', /^\/api\/jobs\/([^/]+)\/cancel$/))) {
    await readJson(req, 1024);
    return sendJson(res, 200, { job: queue.summary(queue.cancel(decodePart(match[1]!))) });
  }
  if (route('GET', /^\/api\/runs$/)) return sendJson(res, 200, { runs: listRuns(outDir) });
  if ((match = route('GET', /^\/api\/runs\/([^/]+)\/files\/([^/]+)$/))) {
    const file = readRunFile(outDir, decodePart(match[1]!), decodePart(match[2]!));
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': file.contentType, 'Content-Length': file.data.length, 'Cache-Control': 'no-cache' });
    res.end(file.data);
    return;
  }
  if (route('POST', /^\/api\/embed$/)) return sendJson(res, 200, await embedRequest(segmenter, await readJson(req, maxBody), limits));
  if (route('POST', /^\/api\/segment$/)) return sendJson(res, 200, await segmentRequest(segmenter, await readJson(req, maxBody), limits));
  if (path.startsWith('/api/')) {
    const known = API_ROUTES.test(path);
    throw new HttpError(known ? 405 : 404, known ? 'E_METHOD' : 'E_NOT_FOUND', `${method} ${path}: no such API route (see docs/api.md)`);
  }
  const asset = ctx.assets.get(path === '/' ? 'index.html' : path.slice(1));
  if (method !== 'GET' || asset === undefined) throw new HttpError(404, 'E_NOT_FOUND', `${method} ${path}: not found`);
  const data = readFileSync(asset.path);
  res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': asset.type, 'Content-Length': data.length, 'Cache-Control': 'no-cache' });
  res.end(data);
}

/** The models, fixed for the server's life: the transfer worker (loaded) and the SAM-HQ worker (when given). */
async function openModels(
  options: ServeOptions,
  onStatus: (message: string) => void,
  runsDir: string,
): Promise<{ worker: ModelWorker | QueueClient; ready: Context['ready']; segmenter: WorkerSegmenter | undefined }> {
  let worker: ModelWorker | QueueClient;
  let ready: Context['ready'];
  if (options.redis !== undefined) {
    ready = modelInfo(options.model);
    worker = await QueueClient.open(options.redis, options.queue, runsDir, onStatus);
  } else {
    const config: WorkerConfig = { model: options.model };
    for (const k of ['cacheDir', 'device', 'precision', 'threads'] as const) if (options[k] !== undefined) Object.assign(config, { [k]: options[k] });
    const local = new ModelWorker(config, onStatus);
    worker = local;
    ready = await local.ready.catch(async (e: Error) => {
      await local.close().catch(() => {});
      throw e;
    });
  }
  if (options.samModel === undefined) return { worker, ready, segmenter: undefined };
  const sam: Parameters<typeof WorkerSegmenter.open>[0] = { weights: options.samModel };
  if (options.cacheDir !== undefined) sam.cacheDir = options.cacheDir;
  if (options.threads !== undefined) sam.threads = options.threads;
  const segmenter = await WorkerSegmenter.open(sam).catch(async (e: Error) => {
    await worker.close();
    throw e;
  });
  return { worker, ready, segmenter };
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const assets = staticAssets();
  // With --redis the queue workers write OUT/serve/<run id> (their --out is serve's --out).
  const outDir = options.redis === undefined ? resolve(options.outDir) : join(resolve(options.outDir), SERVE_BATCH);
  const limits = options.limits ?? DEFAULT_UPLOAD_LIMITS;
  // Status lines of the model (a graph built or loaded, minutes for the first SD-1.5 run) go to the log and the running job.
  const to: { queue?: JobQueue } = {};
  const { worker, ready, segmenter } = await openModels(
    options,
    (message) => {
      options.onStatus?.(message);
      to.queue?.status(message);
    },
    outDir,
  );
  const finish =
    options.redis === undefined ? (job: Job, result: JobResult) => finishJob(outDir, job, result) : (job: Job) => Promise.resolve(queuedRunFiles(outDir, job));
  const queue = new JobQueue(worker, finish, options.maxWaiting);
  to.queue = queue;
  const ctx: Context = { assets, outDir, limits, maxBody: Math.ceil(limits.maxBytes / 3) * 4 * 4 + 256 * 1024, ready, queue, segmenter };
  let hosts = new Set<string>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    void (async () => {
      try {
        checkHost(req, hosts);
        if (path.startsWith('/api/')) checkSameOrigin(req);
        await handle(ctx, req, res, path);
      } catch (e) {
        sendError(res, e);
      }
    })();
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolveListen());
  }).catch(async (e: Error) => {
    await worker.close();
    await segmenter?.close();
    throw e;
  });
  const port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(host, port);
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    host,
    server,
    model: ready.model,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await worker.close();
      await segmenter?.close();
    },
  };
}

function info(ready: { model: Record<string, unknown>; sizeMultiple: number }, outDir: string, limits: UploadLimits, sam: boolean): unknown {
  return {
    tool: 'eye4eye',
    version: VERSION,
    onnxruntime: ORT_VERSION,
    model: ready.model,
    sizeMultiple: ready.sizeMultiple,
    sam,
    outDir,
    limits,
    fields: formFields(),
  };
}

async function createJob(body: Record<string, unknown>, queue: JobQueue, limits: UploadLimits, multiple: number): Promise<Job> {
  const unknown = Object.keys(body).filter((k) => !(JOB_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new HttpError(400, 'E_INVALID_PARAMETER', `unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')} (fields: ${JOB_FIELDS.join(', ')})`);
  const options = checkSizeMultiple(checkOptions(body['options']), multiple);
  const structure = await readUpload('structure', body['structure'], limits);
  const appearance = await readUpload('appearance', body['appearance'], limits);
  const structureMask = body['structureMask'] === undefined ? undefined : await readUpload('structureMask', body['structureMask'], limits);
  const appearanceMask = body['appearanceMask'] === undefined ? undefined : await readUpload('appearanceMask', body['appearanceMask'], limits);
  for (const [field, mask] of [
    ['structureMask', structureMask],
    ['appearanceMask', appearanceMask],
  ] as const) {
    if (mask === undefined) continue;
    const { max } = await sharp(mask.data)
      .greyscale()
      .stats()
      .then((s) => s.channels[0]!);
    if (max <= 127)
      throw new HttpError(400, 'E_INVALID_PARAMETER', `${field}: the mask selects no pixel (white = object; every pixel is <= 127)`, { parameter: field });
  }
  // The pipeline's own checks before any model work (decoding, each mask's aspect against its image), so that a
  // job that cannot run is refused here and never queued.
  const checked: TransferOptions = { ...options };
  if (structureMask !== undefined) checked.structureMask = structureMask.data;
  if (appearanceMask !== undefined) checked.appearanceMask = appearanceMask.data;
  try {
    await prepareTransferInputs({ structure: structure.data, appearance: appearance.data }, checked, multiple);
  } catch (e) {
    if (e instanceof E4EError && !(e instanceof InvalidParameterError)) throw new HttpError(400, e.code, e.message);
    throw e;
  }
  const rest = requestOptions(options);
  const id = newRunId();
  return queue.add(
    id,
    { id, structure: structure.data, appearance: appearance.data, structureMask: structureMask?.data, appearanceMask: appearanceMask?.data, options: rest },
    options.domain,
  );
}

/** The options a request may set (the server-fixed ones dropped). */
function requestOptions(options: TransferOptions): Record<string, unknown> {
  const { structureMask: _s, appearanceMask: _a, device: _d, precision: _p, cacheDir: _c, ...rest } = options;
  return rest;
}

function streamEvents(req: IncomingMessage, res: ServerResponse, queue: JobQueue, job: Job): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  res.write('retry: 2000\n\n');
  let n = 0;
  const final = new Set(['done', 'failed', 'cancelled']);
  const send = (e: JobEvent): void => {
    res.write(`id: ${n++}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    if (final.has(e.event)) res.end();
  };
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const unsubscribe = queue.subscribe(job, send);
  if (job.status === 'done' || job.status === 'failed' || job.status === 'cancelled') res.end();
  req.on('close', () => {
    clearInterval(keepAlive);
    unsubscribe();
  });
}

/** The files a queue worker wrote for a job (its run folder under the shared output folder). */
function queuedRunFiles(outDir: string, job: Job): string[] {
  const run = listRuns(outDir).find((r) => r.id === job.id);
  if (run === undefined) throw new FileError(`${join(outDir, job.id)}: the queue worker's run folder is missing (serve --out must be the workers' --out)`);
  return run.files;
}

/** A finished job's folder: the CLI's files, the inputs as the model saw them, matches.json and run.json, atomically. */
async function finishJob(outDir: string, job: Job, result: JobResult): Promise<string[]> {
  checkRunId(job.id);
  const files = result.files.map((f) => ({ name: f.name, data: Buffer.from(f.data) }));
  if (result.matches !== null) files.push({ name: 'matches.json', data: Buffer.from(`${JSON.stringify(result.matches)}\n`) });
  const names = [...files.map((f) => f.name), 'run.json'];
  const record = {
    tool: 'eye4eye',
    command: 'serve',
    createdAt: job.createdAt,
    inputs: {
      structure: 'structure.png',
      appearance: 'appearance.png',
      structureMask: names.includes('mask-structure.png') ? 'mask-structure.png' : null,
      appearanceMask: names.includes('mask-appearance.png') ? 'mask-appearance.png' : null,
    },
    options: result.options,
    model: result.model,
    versions: { eye4eye: VERSION, onnxruntime: ORT_VERSION, node: process.version, sharp: sharp.versions.sharp, vips: sharp.versions.vips },
    timings: result.timings,
    cache: result.cache,
    sizes: result.sizes,
    correspondence:
      result.matches === null
        ? null
        : { site: result.matches.site, iteration: result.matches.iteration, tokens: { width: result.matches.width, height: result.matches.height } },
    outDir: join(outDir, job.id),
    outputs: names,
  };
  files.push({ name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) });
  writeRunFolder(outDir, job.id, files);
  return names;
}
