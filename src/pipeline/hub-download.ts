/**
 * Download a Stable Diffusion model in the diffusers layout from the Hugging Face Hub into the Hugging Face cache,
 * fetching only what eye4eye reads (model-source.ts decides when):
 *
 *   model_index.json
 *   unet/ vae/ text_encoder/   config.json and ONE safetensors weights set, chosen like findWeights does (plain, then
 *                              sharded index + its shards, fp16 variants only when nothing else exists; never .bin/.ckpt)
 *   tokenizer/                 tokenizer_config.json special_tokens_map.json vocab.json merges.txt
 *   scheduler/                 scheduler_config.json
 *
 * The cache layout is huggingface_hub's: blobs/<etag>, snapshots/<commit>/<path> (relative symlinks to the blobs) and
 * refs/<revision> holding the commit. @huggingface/hub's downloadFileToCacheDir writes the blob to `<blob>.incomplete`,
 * renames it and only then links it into the snapshot, so a failed download leaves nothing in the snapshot; the
 * revision is resolved to its commit first (downloadFileToCacheDir would otherwise file each file under its own last
 * commit) and refs/<revision> is written last, once every file is there.
 */
import { downloadFileToCacheDir, getRepoFolderName, HubApiError, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { AbortError, ModelNotFoundError } from '../errors.js';
import { WEIGHT_FILE_CANDIDATES } from '../io/diffusers-layout.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface DownloadProgress {
  /** Repository path of the file being downloaded (e.g. `unet/diffusion_pytorch_model.safetensors`). */
  file: string;
  /** 0-based index of `file` among the `files` to fetch. */
  fileIndex: number;
  files: number;
  /** Bytes done over all files (files already in the cache count as done); reaches `totalBytes` at the end. */
  bytes: number;
  totalBytes: number;
}

export interface DownloadOptions {
  /** The hub cache folder (hfHubCacheDir(env)). */
  cacheDir: string;
  /** Branch, tag or commit hash (default: main). */
  revision?: string;
  /** A Hugging Face token (HF_TOKEN), for gated and private models. */
  accessToken?: string;
  /** The Hub endpoint (HF_ENDPOINT; default https://huggingface.co). */
  hubUrl?: string;
  fetch?: typeof fetch;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** What to fetch of the repository (default: a diffusers Stable Diffusion model, chooseDiffusersFiles). */
  choose?: (id: string, paths: readonly string[]) => DiffusersFileChoice;
}

const COMMIT_HASH = /^[0-9a-f]{40}$/;
const PICKLE_WEIGHTS = /\.(bin|ckpt|pt|pth)$/;
const WEIGHT_COMPONENTS = ['unet', 'vae', 'text_encoder'] as const;
/** Files eye4eye reads besides the weights; `required: false` ones are taken when the repository has them. */
const CONFIG_FILES: readonly { path: string; required: boolean }[] = [
  { path: 'model_index.json', required: false },
  { path: 'unet/config.json', required: true },
  { path: 'vae/config.json', required: true },
  { path: 'text_encoder/config.json', required: true },
  { path: 'tokenizer/tokenizer_config.json', required: true },
  { path: 'tokenizer/special_tokens_map.json', required: false },
  { path: 'tokenizer/vocab.json', required: true },
  { path: 'tokenizer/merges.txt', required: true },
  { path: 'scheduler/scheduler_config.json', required: true },
];

export interface DiffusersFileChoice {
  /** Files to fetch as they are. */
  files: string[];
  /** Sharded weight indexes: fetch them, then the shards their weight_map names. */
  shardIndexes: string[];
}

function notDiffusers(id: string, message: string, hint?: string): ModelNotFoundError {
  return new ModelNotFoundError(`model '${id}': ${message}`, {
    hint:
      hint ??
      'eye4eye needs a Stable Diffusion model in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/) with safetensors weights, e.g. stable-diffusion-v1-5/stable-diffusion-v1-5; or pass --model DIR with such a folder',
  });
}

/** What to fetch of a repository holding `paths` (its file list); throws when something eye4eye needs is not there. */
export function chooseDiffusersFiles(id: string, paths: readonly string[]): DiffusersFileChoice {
  const present = new Set(paths);
  const missing = CONFIG_FILES.filter((f) => f.required && !present.has(f.path)).map((f) => f.path);
  if (missing.length > 0) {
    const top = paths.filter((p) => !p.includes('/')).sort();
    throw notDiffusers(id, `not a diffusers model: missing ${missing.join(', ')} (top-level files: ${top.length > 0 ? top.join(', ') : 'none'})`);
  }
  const files = CONFIG_FILES.filter((f) => present.has(f.path)).map((f) => f.path);
  const shardIndexes: string[] = [];
  for (const component of WEIGHT_COMPONENTS) {
    const name = WEIGHT_FILE_CANDIDATES.find((n) => present.has(`${component}/${n}`));
    if (name === undefined) {
      const pickles = paths.filter((p) => p.startsWith(`${component}/`) && PICKLE_WEIGHTS.test(p)).sort();
      if (pickles.length > 0) {
        throw notDiffusers(
          id,
          `component '${component}' has only PyTorch pickle weights (${pickles.join(', ')}); eye4eye requires safetensors weights`,
          'pick a revision or a copy of the model with safetensors weights, or convert it (load it with diffusers and call save_pretrained(folder, safe_serialization=True)) and pass --model DIR',
        );
      }
      throw notDiffusers(id, `component '${component}' has no weights; expected one of ${WEIGHT_FILE_CANDIDATES.map((n) => `${component}/${n}`).join(', ')}`);
    }
    const path = `${component}/${name}`;
    (name.endsWith('.json') ? shardIndexes : files).push(path);
  }
  return { files, shardIndexes };
}

/** What to fetch of a Hugging Face SamHQModel repository: config.json and model.safetensors (never pickles). */
export function chooseSamFiles(id: string, paths: readonly string[]): DiffusersFileChoice {
  const present = new Set(paths);
  const missing = ['config.json', 'model.safetensors'].filter((f) => !present.has(f));
  if (missing.length > 0) {
    const top = paths.filter((p) => !p.includes('/')).sort();
    throw new ModelNotFoundError(
      `model '${id}': not a SamHQModel repository: missing ${missing.join(', ')} (top-level files: ${top.length > 0 ? top.join(', ') : 'none'})`,
      {
        hint: 'eye4eye needs a Hugging Face SamHQModel repository (config.json + model.safetensors), e.g. syscv-community/sam-hq-vit-large; or pass --sam-model with a folder or an official sam_hq_vit_{b,l,h}.pth',
      },
    );
  }
  return { files: ['config.json', 'model.safetensors'], shardIndexes: [] };
}

/** The shard paths a sharded index names (relative to its folder), checked against the repository's files. */
export function shardsOf(id: string, indexPath: string, indexText: string, present: ReadonlySet<string>): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexText) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw notDiffusers(id, `${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) throw notDiffusers(id, `${indexPath}: no weight_map object`);
  const dir = posix.dirname(indexPath);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))]
    .map((s) => {
      if (typeof s !== 'string' || !s.endsWith('.safetensors') || s.includes('..') || s.startsWith('/'))
        throw notDiffusers(id, `${indexPath}: bad shard name ${JSON.stringify(s)}`);
      return posix.join(dir, s);
    })
    .sort();
  const absent = shards.filter((s) => !present.has(s));
  if (shards.length === 0) throw notDiffusers(id, `${indexPath}: its weight_map names no shards`);
  if (absent.length > 0) throw notDiffusers(id, `${indexPath} names shards the repository does not have: ${absent.join(', ')}`);
  return shards;
}

function describeCause(e: unknown): string {
  if (e instanceof HubApiError) {
    const why =
      e.statusCode === 401
        ? ' (the repository does not exist, or it is private or gated and needs a token)'
        : e.statusCode === 403
          ? ' (access refused: a gated model needs its terms accepted on the Hub and HF_TOKEN set)'
          : e.statusCode === 404
            ? ' (not found)'
            : '';
    return `HTTP ${e.statusCode}${why}: ${e.message}`;
  }
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}

function downloadError(id: string, hubUrl: string, what: string, cause: unknown): ModelNotFoundError {
  return new ModelNotFoundError(`model '${id}' could not be downloaded from ${hubUrl}: ${what}: ${describeCause(cause)}`, {
    cause,
    hint: `check the id (${hubUrl}/${id}); gated or private models need HF_TOKEN set to a token from ${hubUrl}/settings/tokens; or download it with \`huggingface-cli download ${id}\` (then HF_HUB_OFFLINE=1 works), or pass --model DIR with a diffusers model folder`,
  });
}

/**
 * @huggingface/hub's downloadFileToCacheDir prints "Downloading <file> to <blob>.incomplete" with console.debug, which
 * goes to stdout in Node (where the CLI writes its result); drop those lines while our downloads run.
 */
let quietDepth = 0;
let savedDebug: typeof console.debug | undefined;
async function withoutLibraryChatter<T>(run: () => Promise<T>): Promise<T> {
  if (quietDepth++ === 0) {
    const original = console.debug;
    savedDebug = original;
    console.debug = (...args: unknown[]): void => {
      if (typeof args[0] === 'string' && /^Downloading .* to .*\.incomplete$/.test(args[0])) return;
      original.apply(console, args);
    };
  }
  try {
    return await run();
  } finally {
    if (--quietDepth === 0 && savedDebug !== undefined) {
      console.debug = savedDebug;
      savedDebug = undefined;
    }
  }
}

function fileSize(path: string): number | undefined {
  try {
    const s = statSync(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

function requestUrl(input: Parameters<typeof fetch>[0]): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

/**
 * Download `id` into the hub cache (the files `options.choose` picks; default: the diffusers files eye4eye needs); returns the snapshot folder.
 * Files already in the snapshot are not fetched again. Failures are ModelNotFoundError naming the id, the file and the cause.
 */
export async function downloadDiffusersModel(id: string, options: DownloadOptions): Promise<string> {
  const revision = options.revision ?? 'main';
  const hubUrl = (options.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const hubOrigin = new URL(hubUrl).origin;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const { signal, accessToken } = options;
  const checkAborted = (): void => {
    if (signal?.aborted === true) throw new AbortError('model download aborted');
  };
  // The token goes to the Hub's own origin only (not to the CDN it redirects to); @huggingface/hub would also refuse
  // tokens that do not start with hf_, which huggingface_hub accepts.
  const hubFetch: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    if (accessToken !== undefined && accessToken !== '' && !headers.has('authorization') && new URL(requestUrl(input)).origin === hubOrigin) {
      headers.set('authorization', `Bearer ${accessToken}`);
    }
    return baseFetch(input, { ...init, headers, ...(signal !== undefined ? { signal } : {}) });
  };
  const repo = { type: 'model' as const, name: id };
  const fail = (what: string, e: unknown): Error => {
    if (signal?.aborted === true) return new AbortError('model download aborted');
    if (e instanceof ModelNotFoundError || e instanceof AbortError) return e;
    return downloadError(id, hubUrl, what, e);
  };

  return withoutLibraryChatter(async () => {
    checkAborted();
    let commit = revision;
    if (!COMMIT_HASH.test(revision)) {
      try {
        commit = (await modelInfo({ name: id, revision, additionalFields: ['sha'], hubUrl, fetch: hubFetch })).sha;
      } catch (e) {
        throw fail(`resolving revision '${revision}'`, e);
      }
      if (typeof commit !== 'string' || !COMMIT_HASH.test(commit))
        throw fail(`resolving revision '${revision}'`, new Error(`the Hub answered no commit hash (${JSON.stringify(commit)})`));
    }
    const entries = new Map<string, ListFileEntry>();
    try {
      for await (const entry of listFiles({ repo, recursive: true, revision: commit, hubUrl, fetch: hubFetch })) {
        if (entry.type === 'file') entries.set(entry.path, entry);
      }
    } catch (e) {
      throw fail(`listing the files of revision ${commit}`, e);
    }
    const storage = join(options.cacheDir, getRepoFolderName(repo));
    const snapshot = join(storage, 'snapshots', commit);
    const sizeOf = (path: string): number => {
      const entry = entries.get(path)!;
      return entry.lfs?.size ?? entry.size;
    };

    /** Fetch one file into the snapshot (unless it is there); `onBytes` gets the bytes of its body as they arrive. */
    const fetchFile = async (path: string, onBytes: (n: number) => void): Promise<void> => {
      checkAborted();
      const pointer = join(snapshot, ...path.split('/'));
      const expected = sizeOf(path);
      if (fileSize(pointer) === expected) return;
      const entry = entries.get(path)!;
      const blob = join(storage, 'blobs', entry.lfs?.oid ?? entry.xetHash ?? entry.oid ?? '-');
      const counting: typeof fetch = async (input, init) => {
        const res = await hubFetch(input, init);
        const range = new Headers(init?.headers).get('range');
        // Count file bodies only: not the API calls, nor the 1-byte probe fileDownloadInfo makes.
        if (!res.ok || res.body === null || range === 'bytes=0-0' || new URL(requestUrl(input)).pathname.startsWith('/api/')) return res;
        const body = res.body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              onBytes(chunk.byteLength);
              controller.enqueue(chunk);
            },
          }),
        );
        const counted = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
        Object.defineProperty(counted, 'url', { value: res.url });
        return counted;
      };
      try {
        await downloadFileToCacheDir({ repo, path, revision: commit, hubUrl, cacheDir: options.cacheDir, fetch: counting });
      } catch (e) {
        rmSync(`${blob}.incomplete`, { force: true });
        throw fail(`file ${path}`, e);
      }
      const got = fileSize(pointer);
      if (got !== expected) {
        // A short (or long) body: remove the link and its blob so that nothing wrong stays in the cache.
        try {
          rmSync(realpathSync(pointer), { force: true });
        } catch {
          // the link's target is already gone
        }
        rmSync(pointer, { force: true });
        throw fail(`file ${path}`, new Error(`received ${got ?? 'no'} bytes, the Hub lists ${expected}`));
      }
    };

    const choice = (options.choose ?? chooseDiffusersFiles)(id, [...entries.keys()]);
    const present = new Set(entries.keys());
    const shards: string[] = [];
    for (const index of choice.shardIndexes) {
      await fetchFile(index, () => {});
      shards.push(...shardsOf(id, index, readFileSync(join(snapshot, ...index.split('/')), 'utf8'), present));
    }
    const plan = [...choice.files, ...choice.shardIndexes, ...shards];
    const totalBytes = plan.reduce((sum, p) => sum + sizeOf(p), 0);
    let done = 0;
    for (const [fileIndex, file] of plan.entries()) {
      const size = sizeOf(file);
      let current = 0;
      const report = (): void => options.onProgress?.({ file, fileIndex, files: plan.length, bytes: done + Math.min(current, size), totalBytes });
      report();
      await fetchFile(file, (n) => {
        current += n;
        report();
      });
      done += size;
      current = 0;
      report();
    }

    // refs/<revision> last: a snapshot is only found through it once complete (as huggingface_hub, none for a commit).
    if (revision !== commit) {
      const ref = join(storage, 'refs', ...revision.split('/'));
      mkdirSync(dirname(ref), { recursive: true });
      const temp = `${ref}.${process.pid}.tmp`;
      writeFileSync(temp, commit);
      renameSync(temp, ref);
    }
    return snapshot;
  });
}
