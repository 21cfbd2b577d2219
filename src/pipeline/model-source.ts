/**
 * Where a model comes from: a local diffusers folder, or a Hugging Face Hub id (`owner/name`) found in the local
 * Hugging Face cache (the layout `huggingface-cli download` and diffusers' from_pretrained write):
 *
 *   <hub cache>/models--<owner>--<name>/refs/main          -> the revision (commit hash)
 *   <hub cache>/models--<owner>--<name>/snapshots/<rev>/   -> the model folder
 *
 * with <hub cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub (huggingface_hub's own rules). Downloading is not implemented yet: a model that is not in
 * the cache is a ModelNotFoundError that says how to get it, never a silent fallback.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FileError, ModelNotFoundError } from '../errors.js';

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

/** Resolve a hub id through the local cache, or fail with the paths looked at. */
function fromHubCache(id: string, env: NodeJS.ProcessEnv): ModelSource {
  const [owner, name] = id.split('/') as [string, string];
  const repoDir = join(hfHubCacheDir(env), `models--${owner}--${name}`);
  const refPath = join(repoDir, 'refs', 'main');
  const looked: string[] = [refPath];
  if (existsSync(refPath)) {
    const revision = readFileSync(refPath, 'utf8').trim();
    const snapshot = join(repoDir, 'snapshots', revision);
    looked.push(snapshot);
    if (isDir(snapshot)) return { id, path: snapshot, kind: 'hf-cache', revision };
  } else {
    // A cache filled with an explicit --revision has no refs/main; take its snapshot when there is exactly one.
    const snapshots = join(repoDir, 'snapshots');
    looked.push(snapshots);
    const revisions = isDir(snapshots) ? readdirSync(snapshots).filter((r) => isDir(join(snapshots, r))) : [];
    if (revisions.length === 1) return { id, path: join(snapshots, revisions[0]!), kind: 'hf-cache', revision: revisions[0]! };
  }
  const why = isOffline(env) ? 'HF_HUB_OFFLINE is set, so it cannot be downloaded' : 'eye4eye cannot download models yet (online download is not implemented)';
  throw new ModelNotFoundError(`model '${id}' is not in the Hugging Face cache and ${why}; looked at: ${looked.join(', ')}`, {
    hint: `download it with \`huggingface-cli download ${id}\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or pass --model DIR with a diffusers model folder`,
  });
}

/**
 * A model argument to a folder: an existing path is used directly; `owner/name` that is not a path is a hub id;
 * anything else is a missing folder.
 */
export function resolveModelSource(idOrDir: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  if (existsSync(idOrDir)) {
    const path = resolve(idOrDir);
    if (!isDir(path)) throw new FileError(`${path}: expected a model folder, found a file`);
    return { id: idOrDir, path, kind: 'folder' };
  }
  if (HUB_ID.test(idOrDir) && !idOrDir.startsWith('.')) return fromHubCache(idOrDir, env);
  throw new FileError(`${resolve(idOrDir)}: model folder not found`, {
    hint: 'pass a diffusers model folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face id such as stable-diffusion-v1-5/stable-diffusion-v1-5',
  });
}
