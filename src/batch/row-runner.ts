/**
 * Run one batch row on a loaded pipeline into its own output folder (OUT/<id>, claimed with RunFolder: new or
 * empty, or an earlier eye4eye run of this row replaced), writing what `eye4eye transfer` writes; its run.json
 * carries `batch: { id, row, optionsHash }`, which is how a later invocation (or another queue worker) knows the
 * row is done. Shared by `eye4eye batch` and the queue worker.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortError } from '../errors.js';
import { resultFiles, runRecord } from '../cli/transfer-command.js';
import { expectedOutputBytes, RunFolder, type ClaimOptions } from '../cli/run-folder.js';
import { prepareTransferInputs, type ProgressEvent, type TransferPipeline } from '../pipeline/pipeline.js';
import type { BatchRow } from './batch-rows.js';

export interface RowResult {
  outDir: string;
  files: string[];
  timings: Record<string, number>;
  /** Undefined when the row was found done (`found`). */
  inversionCache: { app: 'hit' | 'miss'; struct: 'hit' | 'miss' } | undefined;
  /** The output was already there (written by another worker since the caller checked): nothing was computed. */
  found: boolean;
}

function aborted(s: AbortSignal | undefined): boolean {
  return s?.aborted === true;
}

/** Whether `outDir` holds this row's finished output (run.json with the row's options hash). */
export function rowOutputDone(outDir: string, optionsHash: string): boolean {
  const path = join(outDir, 'run.json');
  if (!existsSync(path)) return false;
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as { tool?: unknown; batch?: { optionsHash?: unknown } };
    return record.tool === 'eye4eye' && record.batch?.optionsHash === optionsHash;
  } catch {
    return false;
  }
}

/** Whether `outDir` holds an eye4eye run at all (then it is replaced: the row's options changed). */
function holdsRun(outDir: string): boolean {
  return existsSync(join(outDir, 'run.json'));
}

/** Compute one row into outRoot/<id>; what it wrote is removed again on failure. */
export async function runBatchRow(
  pipeline: TransferPipeline,
  row: BatchRow,
  outRoot: string,
  controls: {
    onProgress?: (e: ProgressEvent) => void;
    signal?: AbortSignal;
    argv?: readonly string[];
    command?: string;
    takeOverLock?: ClaimOptions['takeOverLock'];
  } = {},
): Promise<RowResult> {
  const outDir = join(outRoot, row.id);
  const prepared = await prepareTransferInputs({ structure: row.structure, appearance: row.appearance }, row.options);
  const masks = 2;
  const folder = RunFolder.claim(outDir, {
    overwrite: holdsRun(outDir),
    expectedBytes: expectedOutputBytes(prepared.size.width, prepared.size.height, masks),
    ...(controls.takeOverLock === undefined ? {} : { takeOverLock: controls.takeOverLock }),
  });
  // Checked again under the folder's lock: another worker may have finished the row since the caller looked.
  if (rowOutputDone(outDir, row.optionsHash)) {
    folder.release();
    return { outDir, files: [], timings: {}, inversionCache: undefined, found: true };
  }
  try {
    const result = await pipeline.transfer({ structure: row.structure, appearance: row.appearance }, row.options, {
      ...(controls.onProgress === undefined ? {} : { onProgress: controls.onProgress }),
      ...(controls.signal === undefined ? {} : { signal: controls.signal }),
    });
    if (aborted(controls.signal)) throw new AbortError('batch row aborted');
    const files = await resultFiles(result);
    const names = [...files.map((f) => f.name), 'run.json'];
    const record = runRecord(
      { structure: row.structure, appearance: row.appearance, outDir, argv: controls.argv ?? [], given: row.given },
      row.options,
      result,
      names,
    ) as Record<string, unknown>;
    const command = controls.command ?? 'batch';
    record['command'] = command;
    record['commandLine'] = { argv: ['eye4eye', command, ...(controls.argv ?? [])], cwd: process.cwd() };
    record['batch'] = { id: row.id, row: row.row, optionsHash: row.optionsHash };
    files.push({ name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) });
    if (aborted(controls.signal)) throw new AbortError('batch row aborted');
    const written = folder.write(files);
    const inv = result.metadata.inversionCache;
    return { outDir, files: written, timings: result.timings, inversionCache: { app: inv.app, struct: inv.struct }, found: false };
  } catch (e) {
    folder.release();
    throw e;
  }
}
