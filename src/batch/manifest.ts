/**
 * DIR/manifest.json of a batch: one entry per row (row, line, id, status done | failed | pending, output folder,
 * options hash, timings, error message, inversion cache hits), rewritten atomically (temporary name + rename) after
 * every row, so an interrupted batch always leaves a readable manifest.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileError } from '../errors.js';

export const MANIFEST_NAME = 'manifest.json';

export type RowStatus = 'done' | 'failed' | 'pending';

export interface ManifestRow {
  row: number;
  line: number;
  id: string;
  status: RowStatus;
  /** The row's output folder (absolute). */
  outDir: string;
  optionsHash?: string;
  /** done: computed in this invocation, or found done by an earlier one (skipped). */
  skipped?: boolean;
  startedAt?: string;
  finishedAt?: string;
  /** Seconds the row took, and the pipeline's seconds per phase. */
  seconds?: number;
  timings?: Record<string, number>;
  inversionCache?: { app: 'hit' | 'miss'; struct: 'hit' | 'miss' };
  error?: string;
  /** How many times the row was computed and failed, over every invocation. */
  failures?: number;
}

export interface Manifest {
  tool: 'eye4eye';
  command: 'batch';
  file: string;
  model: string;
  createdAt: string;
  updatedAt: string;
  summary: { rows: number; done: number; failed: number; pending: number; inversionCacheHits: number; inversionCacheMisses: number };
  rows: ManifestRow[];
}

export function summarize(rows: readonly ManifestRow[]): Manifest['summary'] {
  const count = (s: RowStatus): number => rows.filter((r) => r.status === s).length;
  let hits = 0;
  let misses = 0;
  for (const r of rows) {
    if (r.inversionCache === undefined || r.skipped === true) continue;
    for (const v of [r.inversionCache.app, r.inversionCache.struct]) {
      if (v === 'hit') hits++;
      else misses++;
    }
  }
  return { rows: rows.length, done: count('done'), failed: count('failed'), pending: count('pending'), inversionCacheHits: hits, inversionCacheMisses: misses };
}

/** The manifest of an earlier batch in `dir`, undefined when there is none; a FileError when it is not one. */
export function readManifest(dir: string): Manifest | undefined {
  const path = join(dir, MANIFEST_NAME);
  if (!existsSync(path)) return undefined;
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Partial<Manifest>;
  } catch (cause) {
    throw new FileError(`${path}: not a readable batch manifest (${cause instanceof Error ? cause.message : String(cause)})`, {
      cause,
      hint: 'give --out another folder, or remove the file',
    });
  }
  if (m.tool !== 'eye4eye' || m.command !== 'batch' || !Array.isArray(m.rows)) {
    throw new FileError(`${path}: not an eye4eye batch manifest`, { hint: 'give --out another folder' });
  }
  return m as Manifest;
}

/** Write the manifest atomically. */
export function writeManifest(dir: string, manifest: Manifest): void {
  const path = join(dir, MANIFEST_NAME);
  const tmp = join(dir, `.${MANIFEST_NAME}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(tmp, path);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new FileError(`${path}: cannot write the batch manifest (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
}
