/**
 * Where a model comes from: a local diffusers folder, or a Hugging Face Hub id (`owner/name`) resolved through the
 * local Hugging Face cache (the layout `huggingface-cli download` and diffusers' from_pretrained write):
 *
 *   <hub cache>/models--<owner>--<name>/refs/main          -> the revision (commit hash)
 *   <hub cache>/models--<owner>--<name>/snapshots/<rev>/   -> the model folder
 *
 * with <hub cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub (huggingface_hub's own rules). obtainModelSource downloads a model that is not in the cache
 * (or whose snapshot lacks files eye4eye needs) from the Hub ($HF_ENDPOINT, token $HF_TOKEN) into that cache, unless
 * HF_HUB_OFFLINE is set: then it is a ModelNotFoundError that says what is missing and how to get it, never a silent
 * fallback.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { FileError, ModelNotFoundError } from '../errors.js';
import { findWeights, resolveDiffusersLayout } from '../io/diffusers-layout.js';
import { chooseSamFiles, DEFAULT_HUB_URL, downloadDiffusersModel, type DownloadOptions, type DownloadProgress } from './hub-download.js';

export type { DownloadProgress } from './hub-download.js';

export const DEFAULT_MODEL_ID = 'stable-diffusion-v1-5/stable-diffusion-v1-5';

export interface ModelSource {
  /** What the user asked for (hub id or folder as given). */
  id: string;
  /** The diffusers folder that will be opened. */
  path: string;
  kind: 'folder' | 'hf-cache';
  /** The snapshot revision for hub ids. */
  revision?: string;
}

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The Hugging Face hub cache folder, as huggingface_hub resolves it. */
export function hfHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = (name: string): string | undefined => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const hubCache = set('HF_HUB_CACHE') ?? set('HUGGINGFACE_HUB_CACHE');
  if (hubCache !== undefined) return hubCache;
  const hfHome = set('HF_HOME');
  if (hfHome !== undefined) return join(hfHome, 'hub');
  return join(set('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface', 'hub');
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isOffline(env: NodeJS.ProcessEnv): boolean {
  const v = (env['HF_HUB_OFFLINE'] ?? '').toLowerCase();
  return v === '1' || v === 'true' || v === 'yes' || v === 'on';
}

interface CacheLookup {
  source: ModelSource | undefined;
  /** The paths looked at. */
  looked: string[];
}

/** A hub id's snapshot in the local cache: through refs/main, else the only snapshot there is. */
function lookUpHubCache(id: string, env: NodeJS.ProcessEnv): CacheLookup {
  const [owner, name] = id.split('/') as [string, string];
  const repoDir = join(hfHubCacheDir(env), `models--${owner}--${name}`);
  const refPath = join(repoDir, 'refs', 'main');
  const looked: string[] = [refPath];
  if (existsSync(refPath)) {
    const revision = readFileSync(refPath, 'utf8').trim();
    const snapshot = join(repoDir, 'snapshots', revision);
    looked.push(snapshot);
    if (isDir(snapshot)) return { source: { id, path: snapshot, kind: 'hf-cache', revision }, looked };
  } else {
    // A cache filled with an explicit --revision has no refs/main; take its snapshot when there is exactly one.
    const snapshots = join(repoDir, 'snapshots');
    looked.push(snapshots);
    const revisions = isDir(snapshots) ? readdirSync(snapshots).filter((r) => isDir(join(snapshots, r))) : [];
    if (revisions.length === 1) return { source: { id, path: join(snapshots, revisions[0]!), kind: 'hf-cache', revision: revisions[0]! }, looked };
  }
  return { source: undefined, looked };
}

const OFFLINE_HINT = (id: string): string =>
  `download it with \`huggingface-cli download ${id}\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or unset HF_HUB_OFFLINE to let eye4eye download it, or pass --model DIR with a diffusers model folder`;

function notCached(id: string, looked: readonly string[], env: NodeJS.ProcessEnv): ModelNotFoundError {
  if (isOffline(env)) {
    return new ModelNotFoundError(
      `model '${id}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be downloaded; looked at: ${looked.join(', ')}`,
      { hint: OFFLINE_HINT(id) },
    );
  }
  return new ModelNotFoundError(`model '${id}' is not in the Hugging Face cache; looked at: ${looked.join(', ')}`, {
    hint: `loadPipeline (and the eye4eye CLI) download it when online; or download it with \`huggingface-cli download ${id}\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or pass --model DIR with a diffusers model folder`,
  });
}

/** Why a cached snapshot cannot be opened (a file eye4eye needs is missing), or undefined when it is complete. */
function incompleteSnapshot(path: string): string | undefined {
  try {
    const layout = resolveDiffusersLayout(path);
    for (const dir of [layout.unet, layout.vae, layout.textEncoder]) findWeights(dir);
    return undefined;
  } catch (e) {
    if (e instanceof FileError) return e.message.split('\n')[0];
    throw e;
  }
}

function hubId(idOrDir: string): boolean {
  return HUB_ID.test(idOrDir) && !idOrDir.startsWith('.');
}

function localFolder(idOrDir: string): ModelSource {
  const path = resolve(idOrDir);
  if (!isDir(path)) throw new FileError(`${path}: expected a model folder, found a file`);
  return { id: idOrDir, path, kind: 'folder' };
}

function folderNotFound(idOrDir: string): FileError {
  return new FileError(`${resolve(idOrDir)}: model folder not found`, {
    hint: 'pass a diffusers model folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face id such as stable-diffusion-v1-5/stable-diffusion-v1-5',
  });
}

/**
 * A model argument to a folder, without any download: an existing path is used directly; `owner/name` that is not a
 * path is a hub id looked up in the Hugging Face cache (ModelNotFoundError when absent); anything else is a missing folder.
 */
export function resolveModelSource(idOrDir: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  if (existsSync(idOrDir)) return localFolder(idOrDir);
  if (!hubId(idOrDir)) throw folderNotFound(idOrDir);
  const { source, looked } = lookUpHubCache(idOrDir, env);
  if (source === undefined) throw notCached(idOrDir, looked, env);
  return source;
}

/** The Hugging Face token: $HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH, else $HF_HOME/token). */
export function hfToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const set = (name: string): string | undefined => (env[name] !== undefined && env[name].trim() !== '' ? env[name].trim() : undefined);
  const token = set('HF_TOKEN') ?? set('HUGGING_FACE_HUB_TOKEN');
  if (token !== undefined) return token;
  const path = set('HF_TOKEN_PATH') ?? join(set('HF_HOME') ?? join(set('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface'), 'token');
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

export interface ObtainModelOptions {
  /** Environment for the cache, endpoint, token and offline mode (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Download progress, called only when the model is downloaded. */
  onDownload?: (p: DownloadProgress) => void;
  /** fetch for the downloads (default: the global one). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** Download `id` into the HF cache of `env` (endpoint, token from the environment); `choose` picks the files. */
async function downloadInto(id: string, env: NodeJS.ProcessEnv, options: ObtainModelOptions, choose?: DownloadOptions['choose']): Promise<ModelSource> {
  const download: DownloadOptions = {
    cacheDir: hfHubCacheDir(env),
    hubUrl: env['HF_ENDPOINT'] !== undefined && env['HF_ENDPOINT'] !== '' ? env['HF_ENDPOINT'] : DEFAULT_HUB_URL,
  };
  if (choose !== undefined) download.choose = choose;
  const token = hfToken(env);
  if (token !== undefined) download.accessToken = token;
  if (options.onDownload !== undefined) download.onProgress = options.onDownload;
  if (options.fetch !== undefined) download.fetch = options.fetch;
  if (options.signal !== undefined) download.signal = options.signal;
  const path = await downloadDiffusersModel(id, download);
  return { id, path, kind: 'hf-cache', revision: basename(path) };
}

/**
 * A model argument to a folder, downloading when needed: an existing path is used directly; a hub id found complete in
 * the Hugging Face cache is used from there; otherwise it is downloaded into that cache (the files eye4eye needs,
 * see hub-download.ts), unless HF_HUB_OFFLINE is set (a ModelNotFoundError naming what is missing).
 */
export async function obtainModelSource(idOrDir: string, options: ObtainModelOptions = {}): Promise<ModelSource> {
  const env = options.env ?? process.env;
  if (existsSync(idOrDir)) return localFolder(idOrDir);
  if (!hubId(idOrDir)) throw folderNotFound(idOrDir);
  const { source, looked } = lookUpHubCache(idOrDir, env);
  const incomplete = source === undefined ? undefined : incompleteSnapshot(source.path);
  if (source !== undefined && incomplete === undefined) return source;
  if (isOffline(env)) {
    if (source === undefined) throw notCached(idOrDir, looked, env);
    throw new ModelNotFoundError(
      `model '${idOrDir}' is incomplete in the Hugging Face cache (${source.path}) and HF_HUB_OFFLINE is set, so the missing files cannot be downloaded: ${incomplete}`,
      { hint: OFFLINE_HINT(idOrDir) },
    );
  }
  return downloadInto(idOrDir, env, options);
}

/** The SAM-HQ model of the official run (run.py uses ViT-L), as a Hugging Face SamHQModel repository. */
export const DEFAULT_SAM_MODEL_ID = 'syscv-community/sam-hq-vit-large';

/**
 * A `--sam-model` argument to something openSamWeights opens, without any download: an existing folder or file
 * (HF SamHQModel folder, model.safetensors, official .pth) is used as given; `owner/name` that is not a path is
 * looked up in the Hugging Face cache, and must hold config.json and model.safetensors there (ModelNotFoundError
 * naming what was looked at otherwise).
 */
export function resolveSamModel(idOrPath: string = DEFAULT_SAM_MODEL_ID, env: NodeJS.ProcessEnv = process.env): ModelSource {
  if (existsSync(idOrPath)) return { id: idOrPath, path: resolve(idOrPath), kind: 'folder' };
  const hint = `download it with \`huggingface-cli download ${idOrPath}\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or pass --sam-model with a SamHQModel folder or an official sam_hq_vit_{b,l,h}.pth`;
  if (!hubId(idOrPath)) {
    throw new FileError(`${resolve(idOrPath)}: SAM-HQ model not found`, {
      hint: `pass a SamHQModel folder, a model.safetensors or a sam_hq_vit_{b,l,h}.pth, or a Hugging Face id such as ${DEFAULT_SAM_MODEL_ID}`,
    });
  }
  const { source, looked } = lookUpHubCache(idOrPath, env);
  const offline = isOffline(env) ? ' (HF_HUB_OFFLINE is set)' : '';
  if (source === undefined)
    throw new ModelNotFoundError(`SAM-HQ model '${idOrPath}' is not in the Hugging Face cache${offline}; looked at: ${looked.join(', ')}`, { hint });
  const missing = ['config.json', 'model.safetensors'].filter((f) => !existsSync(join(source.path, f)));
  if (missing.length > 0) {
    throw new ModelNotFoundError(
      `SAM-HQ model '${idOrPath}' is incomplete in the Hugging Face cache (${source.path}): ${missing.join(' and ')} missing${offline}`,
      { hint },
    );
  }
  return source;
}

/**
 * resolveSamModel, downloading when needed: an existing path is used; a hub id missing from the Hugging Face cache is
 * downloaded into it (config.json + model.safetensors), unless HF_HUB_OFFLINE is set (then resolveSamModel's error).
 */
export async function obtainSamModel(idOrPath: string = DEFAULT_SAM_MODEL_ID, options: ObtainModelOptions = {}): Promise<ModelSource> {
  const env = options.env ?? process.env;
  if (existsSync(idOrPath) || !hubId(idOrPath) || isOffline(env)) return resolveSamModel(idOrPath, env);
  const { source } = lookUpHubCache(idOrPath, env);
  if (source !== undefined && ['config.json', 'model.safetensors'].every((f) => existsSync(join(source.path, f)))) return source;
  return downloadInto(idOrPath, env, options, chooseSamFiles);
}
