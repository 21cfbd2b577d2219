/**
 * The on-disk cache of built graphs: each entry is a folder `<cache>/graphs/<name>-<key>/` holding `<name>.onnx`,
 * its `.onnx.data`, hard links to the weights files and `entry.json` (written last: an entry without it, or whose
 * files do not match it, is incomplete or corrupt and is rebuilt).
 *
 * key = sha256 of (builder version, component name, config, build options, identity of every weights file).
 * A weights file's identity is its real path, size, mtime, inode and safetensors header digest; Hugging Face
 * blobs are named by their content hash, so a changed checkpoint always gives a new key.
 * Two processes building the same entry at once each build into their own temporary folder and rename it into
 * place; the loser discards its copy. Nothing half-written is ever visible under the final name.
 *
 * The cache folder is checked when the cache is opened: when it cannot be written (a file in its place, no
 * permission, a read-only disk), complete entries already in it are still used, new graphs are built into a
 * temporary folder removed by dispose(), and `writable` is false (the pipeline says so and saves no inversions).
 * Temporary entries left by killed processes (`graphs/.tmp-*`, `inversions/*.tmp-*`) are removed when the cache
 * is opened: those of a process no longer running after 15 minutes, any after a day.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  mkdtempSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILDER_VERSION } from '../onnx/format.js';
import { saveModel } from '../onnx/save.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import { ModelBuildError } from '../errors.js';

export interface CacheEntryRequest {
  /** Component name, e.g. `unet`, `vae_encoder`: also the model file's base name. */
  name: string;
  /** Everything the graph depends on besides the weights (parsed config, build options). */
  config: unknown;
  /** The weights files the graph reads. */
  weightFiles: readonly string[];
  /** Build the graph (called only on a cache miss), with what the caller must know about it later (JSON). */
  build: () => BuiltGraph;
}

export interface BuiltGraph {
  graph: GraphBuilder;
  /** Kept in the entry and returned on every hit (e.g. the attention sites of a UNet). */
  meta?: unknown;
}

export interface CacheEntry {
  modelPath: string;
  key: string;
  /** True when the entry was built by this call. */
  built: boolean;
  buildSeconds: number;
  /** The build's meta, as stored (undefined when the build gave none). */
  meta: unknown;
}

/** The platform's cache folder for eye4eye, overridable with E4E_CACHE_DIR. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const override = env['E4E_CACHE_DIR'];
  if (override !== undefined && override !== '') return override;
  if (platform === 'win32') return join(env['LOCALAPPDATA'] ?? join(homedir(), 'AppData', 'Local'), 'eye4eye', 'Cache');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'eye4eye');
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'eye4eye');
}

function headerDigest(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const size = fstatSync(fd).size;
    const declared = len.readBigUInt64LE(0);
    // Not a safetensors header (a PyTorch .pth zip): digest the tail, where the zip central directory lists every entry's CRC-32.
    const [start, n] =
      declared <= BigInt(Math.max(0, size - 8)) ? [8, Math.min(Number(declared), 100_000_000)] : [Math.max(0, size - 65536), Math.min(size, 65536)];
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, start);
    return createHash('sha256').update(header).digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** What identifies a weights file's content without reading gigabytes. */
export function weightsIdentity(file: string): Record<string, string | number> {
  const real = realpathSync(file);
  const st = statSync(real);
  return { path: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, header: headerDigest(real) };
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

let fingerprint: string | undefined;

/**
 * A digest of the graph-building code itself (src/onnx, src/models and the methods' processors, as loaded), so that any change to a builder
 * gives new cache entries even when BUILDER_VERSION was not bumped.
 */
export function builderFingerprint(): string {
  if (fingerprint === undefined) {
    const hash = createHash('sha256');
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.js')) hash.update(entry.name).update(readFileSync(path));
      }
    };
    for (const part of ['../onnx', '../models', '../methods']) walk(fileURLToPath(new URL(part, import.meta.url)));
    fingerprint = hash.digest('hex').slice(0, 16);
  }
  return fingerprint;
}

export function cacheKey(request: Pick<CacheEntryRequest, 'name' | 'config' | 'weightFiles'>): string {
  const identity = {
    builder: BUILDER_VERSION,
    code: builderFingerprint(),
    name: request.name,
    config: request.config,
    weights: request.weightFiles.map(weightsIdentity),
  };
  return createHash('sha256').update(stableJson(identity)).digest('hex').slice(0, 24);
}

interface EntryManifest {
  builderVersion: string;
  key: string;
  files: Record<string, number>;
  meta?: unknown;
}

function listSizes(dir: string, names: readonly string[]): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const n of names) sizes[n] = statSync(join(dir, n)).size;
  return sizes;
}

/** The entry's manifest when the entry is complete, else undefined. */
function completeManifest(dir: string, key: string): EntryManifest | undefined {
  const manifestPath = join(dir, 'entry.json');
  if (!existsSync(manifestPath)) return undefined;
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as EntryManifest;
    if (manifest.key !== key || manifest.builderVersion !== BUILDER_VERSION) return undefined;
    const complete = Object.entries(manifest.files).every(([n, size]) => existsSync(join(dir, n)) && statSync(join(dir, n)).size === size);
    return complete ? manifest : undefined;
  } catch {
    return undefined;
  }
}

function isComplete(dir: string, key: string): boolean {
  return completeManifest(dir, key) !== undefined;
}

/** One graph asked of the cache: taken from it (hit) or built. */
export interface CacheLogEntry {
  name: string;
  key: string;
  hit: boolean;
}

function errorText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** Whether process `pid` runs on this machine (EPERM: it runs, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e instanceof Error && 'code' in e && (e as { code: unknown }).code === 'EPERM';
  }
}

/** Age after which a temporary entry of a process no longer running is stale; any temporary entry is after a day. */
export const STALE_TEMP_MS = 15 * 60 * 1000;
export const ABANDONED_TEMP_MS = 24 * 60 * 60 * 1000;

const GRAPH_TEMP = /^\.tmp-.+-[0-9a-f]{24}-(\d+)-[a-z0-9]+$/;
const FILE_TEMP = /\.tmp-(\d+)-[a-z0-9]+$/;

/** Remove the stale temporary entries of `dir` (see the file comment); returns their names. */
function removeStaleTemps(dir: string, pattern: RegExp, now = Date.now()): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    const m = pattern.exec(e);
    if (m === null) continue;
    const path = join(dir, e);
    try {
      const age = now - statSync(path).mtimeMs;
      if (age > ABANDONED_TEMP_MS || (age > STALE_TEMP_MS && !processAlive(Number(m[1])))) {
        rmSync(path, { recursive: true, force: true });
        removed.push(e);
      }
    } catch {
      // gone already (another process cleaned it)
    }
  }
  return removed;
}

/** Why the cache folder cannot be written, or undefined when it can (its graphs/ and inversions/ folders). */
function probeWritable(root: string): string | undefined {
  for (const sub of ['graphs', 'inversions']) {
    const dir = join(root, sub);
    try {
      mkdirSync(dir, { recursive: true });
      const probe = join(dir, `.probe-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
      writeFileSync(probe, '');
      unlinkSync(probe);
    } catch (cause) {
      return errorText(cause);
    }
  }
  return undefined;
}

export class ModelCache {
  /** The cache folder, absolute. */
  readonly root: string;
  /** False when the folder cannot be written: nothing new is saved there (see the file comment). */
  readonly writable: boolean;
  /** Why the folder cannot be written (the system's message), when it cannot. */
  readonly notWritableReason: string | undefined;
  /** Temporary entries of killed processes removed when the cache was opened. */
  readonly removedStale: readonly string[];
  /** Every graph asked of this cache, in order. */
  readonly log: CacheLogEntry[] = [];
  private scratch: string | undefined;

  constructor(root: string = defaultCacheDir()) {
    this.root = resolve(root);
    this.notWritableReason = probeWritable(this.root);
    this.writable = this.notWritableReason === undefined;
    this.removedStale = this.writable
      ? [
          ...removeStaleTemps(join(this.root, 'graphs'), GRAPH_TEMP).map((e) => join('graphs', e)),
          ...removeStaleTemps(join(this.root, 'inversions'), FILE_TEMP).map((e) => join('inversions', e)),
        ]
      : [];
  }

  entryDir(name: string, key: string): string {
    return join(this.root, 'graphs', `${name}-${key}`);
  }

  /** Where new entries go: the cache's graphs/ folder, or (cache not writable) a temporary folder of this process. */
  private graphsDir(): string {
    if (this.writable) return join(this.root, 'graphs');
    this.scratch ??= mkdtempSync(join(tmpdir(), 'eye4eye-graphs-'));
    return this.scratch;
  }

  /** The cached model for the request, building (and saving) it on a miss or a corrupt entry. */
  obtain(request: CacheEntryRequest): CacheEntry {
    const key = cacheKey(request);
    const cachedDir = this.entryDir(request.name, key);
    const cached = completeManifest(cachedDir, key);
    if (cached !== undefined) {
      this.log.push({ name: request.name, key, hit: true });
      return { modelPath: join(cachedDir, `${request.name}.onnx`), key, built: false, buildSeconds: 0, meta: cached.meta };
    }
    const graphs = this.graphsDir();
    const dir = join(graphs, `${request.name}-${key}`);
    const modelPath = join(dir, `${request.name}.onnx`);
    if (!this.writable) {
      const scratchEntry = completeManifest(dir, key);
      if (scratchEntry !== undefined) {
        this.log.push({ name: request.name, key, hit: false });
        return { modelPath, key, built: false, buildSeconds: 0, meta: scratchEntry.meta };
      }
    }
    const started = performance.now();
    mkdirSync(graphs, { recursive: true });
    const tmp = join(graphs, `.tmp-${request.name}-${key}-${process.pid}-${Math.random().toString(36).slice(2)}`);
    mkdirSync(tmp);
    try {
      const { graph, meta } = request.build();
      saveModel(graph, tmp, request.name);
      const files = listSizes(tmp, readdirSync(tmp));
      const manifest: EntryManifest = { builderVersion: BUILDER_VERSION, key, files, ...(meta === undefined ? {} : { meta }) };
      writeFileSync(join(tmp, 'entry.json'), JSON.stringify(manifest, null, 2));
      if (existsSync(dir) && !isComplete(dir, key)) rmSync(dir, { recursive: true, force: true });
      try {
        renameSync(tmp, dir);
      } catch (err) {
        // Another process put a complete entry in place first: use it, drop ours.
        if (!isComplete(dir, key)) throw err;
        rmSync(tmp, { recursive: true, force: true });
      }
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' && (err as { code: string }).code.startsWith('E_'))
        throw err;
      throw new ModelBuildError(`could not write the graph cache entry ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.log.push({ name: request.name, key, hit: false });
    return { modelPath, key, built: true, buildSeconds: (performance.now() - started) / 1000, meta: completeManifest(dir, key)?.meta };
  }

  /** Remove the temporary folder of graphs built while the cache could not be written (sessions must be closed). */
  dispose(): void {
    if (this.scratch !== undefined) rmSync(this.scratch, { recursive: true, force: true });
    this.scratch = undefined;
  }
}
