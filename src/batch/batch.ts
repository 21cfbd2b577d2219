/**
 * `eye4eye batch`: many transfers from one batch file (batch-file.ts), models loaded once.
 *
 * 1. Every row is checked before anything is computed: parsed and validated (batch-rows.ts), its images and masks
 *    decoded and its prompts checked (prepareTransferInputs). A bad row is recorded as failed with its message; the
 *    others go on.
 * 2. Rows whose folder already holds their output (OUT/<id>/run.json with the row's options hash) are skipped;
 *    rows that failed in an earlier invocation are skipped too unless `retryFailed`.
 * 3. The rest run one after the other on one pipeline (keepSessions): rows that share an image (with the same
 *    inversion settings) reuse its inversion through the on-disk inversion cache, reported per row in the manifest.
 *    The manifest (manifest.ts) is rewritten after every row.
 *
 * `stop` (first Ctrl-C) ends the batch after the current row; `abort` (second Ctrl-C) abandons the current row too
 * (it stays pending, its folder released). Either way the manifest is valid and the result says `interrupted`.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { AbortError, E4EError, FileError } from '../errors.js';
import { processAlive } from '../cli/run-folder.js';
import { prepareTransferInputs, type ProgressEvent, type TransferPipeline } from '../pipeline/pipeline.js';
import { readBatchFile } from './batch-file.js';
import { describe, parseRows, type BatchRow } from './batch-rows.js';
import { MANIFEST_NAME, readManifest, summarize, writeManifest, type Manifest, type ManifestRow } from './manifest.js';
import { rowOutputDone, runBatchRow } from './row-runner.js';

export const BATCH_LOCK_NAME = '.eye4eye-batch.lock';

export interface BatchOptions {
  file: string;
  outDir: string;
  model: string;
  retryFailed?: boolean;
  batchOptions?: BatchRowsOptions;
  /** Open the pipeline (called once, only when a row is to be computed); `needsSam` when a row asks for SAM-HQ. */
  openPipeline: (needsSam: boolean) => Promise<TransferPipeline>;
  /** Lines of progress (overall and per row) go here. */
  log: (line: string) => void;
  /** Per-row phase progress, with the row. */
  onProgress?: (row: BatchRow, e: ProgressEvent) => void;
  /** Called after each computed row (done or failed) with the manifest as written. */
  onRowFinished?: (entry: ManifestRow, manifest: Manifest) => void;
  /** Stop after the current row. */
  stop?: AbortSignal;
  /** Abandon the current row as well. */
  abort?: AbortSignal;
  argv?: readonly string[];
}

type BatchRowsOptions = Parameters<typeof parseRows>[2]['batchOptions'];

export interface BatchResult {
  manifest: Manifest;
  manifestPath: string;
  interrupted: boolean;
  /** Rows computed in this invocation. */
  computed: number;
}

function lockBatchFolder(dir: string): () => void {
  const path = join(dir, BATCH_LOCK_NAME);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() }));
      } finally {
        closeSync(fd);
      }
      return () => rmSync(path, { force: true });
    } catch (e) {
      if (!(e instanceof Error && 'code' in e && e.code === 'EEXIST'))
        throw new FileError(`${dir}: cannot lock the batch folder (${e instanceof Error ? e.message : String(e)})`);
      let other: { pid?: unknown; host?: unknown } = {};
      try {
        other = JSON.parse(readFileSync(path, 'utf8')) as typeof other;
      } catch {
        // a half-written lock is judged by its missing pid
      }
      const sameHost = other.host === undefined || other.host === hostname();
      if (typeof other.pid === 'number' && (!sameHost || processAlive(other.pid))) {
        throw new FileError(`${dir}: the batch folder is in use by another eye4eye batch (pid ${other.pid}${sameHost ? '' : ` on ${String(other.host)}`})`, {
          hint: 'wait for it to finish, or give --out another folder',
        });
      }
      rmSync(path, { force: true });
    }
  }
  throw new FileError(`${dir}: could not lock the batch folder`);
}

/** Whether a signal has fired (read through a call: the loop awaits between reads). */
function aborted(s: AbortSignal | undefined): boolean {
  return s?.aborted === true;
}

function formatEta(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '--:--';
  const r = Math.round(s);
  return `${Math.floor(r / 60)}:${String(r % 60).padStart(2, '0')}`;
}

/** Run a batch (see the file comment). */
export async function runBatch(o: BatchOptions): Promise<BatchResult> {
  const file = readBatchFile(o.file);
  const outDir = resolve(o.outDir);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new FileError(`${outDir}: --out names a file, not a folder`);
  mkdirSync(outDir, { recursive: true });
  const earlier = readManifest(outDir);
  if (earlier === undefined) {
    const foreign = readdirSync(outDir).filter((e) => e !== BATCH_LOCK_NAME && !e.startsWith(`.${MANIFEST_NAME}.tmp-`));
    if (foreign.length > 0)
      throw new FileError(`${outDir}: the batch folder holds files that are not from an eye4eye batch (${foreign.slice(0, 6).join(', ')})`, {
        hint: 'give --out a new or empty folder, or the folder of an earlier run of this batch',
      });
  }
  const unlock = lockBatchFolder(outDir);
  try {
    return await runLocked(o, file, outDir, earlier);
  } finally {
    unlock();
  }
}

async function runLocked(o: BatchOptions, file: ReturnType<typeof readBatchFile>, outDir: string, earlier: Manifest | undefined): Promise<BatchResult> {
  const { rows, problems } = parseRows(file.rows, file.path, { batchOptions: o.batchOptions ?? {}, model: o.model });
  const before = new Map((earlier?.rows ?? []).map((r) => [r.id, r] as const));
  const entries = new Map<number, ManifestRow>();
  const n = file.rows.length;
  for (const p of problems) {
    const failures = (before.get(p.id)?.failures ?? 0) + 1;
    entries.set(p.row, { row: p.row, line: p.line, id: p.id, status: 'failed', outDir: join(outDir, p.id), error: p.error, failures });
  }
  // Decode every row's images and check its prompts before anything is computed.
  const todo: BatchRow[] = [];
  let needsSam = false;
  for (const row of rows) {
    const base = { row: row.row, line: row.line, id: row.id, outDir: join(outDir, row.id), optionsHash: row.optionsHash };
    let prepared;
    try {
      prepared = await prepareTransferInputs({ structure: row.structure, appearance: row.appearance }, row.options);
    } catch (e) {
      if (!(e instanceof E4EError)) throw e;
      const failures = (before.get(row.id)?.failures ?? 0) + 1;
      entries.set(row.row, { ...base, status: 'failed', error: describe(row, e), failures });
      continue;
    }
    const prev = before.get(row.id);
    if (rowOutputDone(base.outDir, row.optionsHash)) {
      entries.set(row.row, { ...(prev?.status === 'done' && prev.optionsHash === row.optionsHash ? prev : {}), ...base, status: 'done', skipped: true });
      continue;
    }
    if (prev?.status === 'failed' && prev.optionsHash === row.optionsHash && o.retryFailed !== true) {
      entries.set(row.row, { ...prev, ...base });
      continue;
    }
    if (prepared.samPrompts.structure !== undefined || prepared.samPrompts.appearance !== undefined) needsSam = true;
    entries.set(row.row, { ...base, status: 'pending', ...(prev?.failures === undefined ? {} : { failures: prev.failures }) });
    todo.push(row);
  }
  const now = new Date().toISOString();
  const manifest: Manifest = {
    tool: 'eye4eye',
    command: 'batch',
    file: file.path,
    model: o.model,
    createdAt: earlier?.createdAt ?? now,
    updatedAt: now,
    summary: summarize([]),
    rows: [],
  };
  const save = (): void => {
    manifest.rows = [...entries.values()].sort((a, b) => a.row - b.row);
    manifest.summary = summarize(manifest.rows);
    manifest.updatedAt = new Date().toISOString();
    writeManifest(outDir, manifest);
  };
  save();
  const skipped = [...entries.values()].filter((e) => e.status === 'done').length;
  const failedBefore = [...entries.values()].filter((e) => e.status === 'failed').length;
  o.log(
    `batch: ${basename(file.path)}: ${n} row${n === 1 ? '' : 's'}: ${todo.length} to compute, ${skipped} already done, ${failedBefore} failed${o.retryFailed === true || failedBefore === 0 ? '' : ' (retry them with --retry-failed)'}`,
  );
  const manifestPath = join(outDir, MANIFEST_NAME);
  if (todo.length === 0) return { manifest, manifestPath, interrupted: false, computed: 0 };
  if (aborted(o.stop) || aborted(o.abort)) return { manifest, manifestPath, interrupted: true, computed: 0 };

  const pipeline = await o.openPipeline(needsSam);
  const seconds: number[] = [];
  let computed = 0;
  let interrupted = false;
  try {
    for (const [k, row] of todo.entries()) {
      if (aborted(o.stop) || aborted(o.abort)) {
        interrupted = true;
        break;
      }
      const entry = entries.get(row.row)!;
      const label = `row ${k + 1} of ${todo.length} (${row.id}, line ${row.line})`;
      o.log(`batch: ${label}: ${basename(row.structure)} + ${basename(row.appearance)}`);
      const start = performance.now();
      entry.startedAt = new Date().toISOString();
      delete entry.error;
      try {
        const result = await runBatchRow(pipeline, row, outDir, {
          ...(o.onProgress === undefined ? {} : { onProgress: (e: ProgressEvent) => o.onProgress!(row, e) }),
          ...(o.abort === undefined ? {} : { signal: o.abort }),
          argv: o.argv ?? [],
        });
        entry.status = 'done';
        entry.timings = result.timings;
        if (result.inversionCache !== undefined) entry.inversionCache = result.inversionCache;
        delete entry.skipped;
      } catch (e) {
        if (e instanceof AbortError) {
          entry.status = 'pending';
          delete entry.startedAt;
          interrupted = true;
          save();
          break;
        }
        entry.status = 'failed';
        entry.error = describe(row, e);
        entry.failures = (entry.failures ?? 0) + 1;
      }
      entry.finishedAt = new Date().toISOString();
      entry.seconds = (performance.now() - start) / 1000;
      seconds.push(entry.seconds);
      computed++;
      save();
      const mean = seconds.reduce((a, b) => a + b, 0) / seconds.length;
      const left = todo.length - (k + 1);
      const s = manifest.summary;
      const what =
        entry.status === 'done'
          ? `done in ${entry.seconds.toFixed(1)} s (inversions: appearance ${entry.inversionCache?.app}, structure ${entry.inversionCache?.struct})`
          : `FAILED: ${entry.error}`;
      o.log(`batch: ${label}: ${what}; ${s.done} done, ${s.failed} failed, ${left} to go, ETA ${formatEta(mean * left)}`);
      o.onRowFinished?.(entry, manifest);
    }
  } finally {
    await pipeline.dispose();
  }
  if (aborted(o.stop) || aborted(o.abort)) interrupted = interrupted || manifest.summary.pending > 0;
  return { manifest, manifestPath, interrupted, computed };
}
