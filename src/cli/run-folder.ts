/**
 * The output folder of one `eye4eye transfer` run (`--out DIR`): DIR itself holds the run's files, as named.
 *
 * Claimed before any computing: DIR must be a folder we can write (created when missing), with room for the outputs,
 * and either empty, or holding exactly an earlier eye4eye run (its run.json and the files it lists), which only
 * `--overwrite` replaces. Anything else in it is refused, with or without `--overwrite`: nothing the tool did not
 * create is ever removed. A lock file (`.eye4eye-run.lock`, exclusive create) keeps a second run out while this one
 * computes; a lock left by a run that was killed (its process is gone) is taken over.
 *
 * Files are written to temporary names (`.<name>.tmp-<pid>-<random>`) and renamed; run.json last. With
 * `--overwrite`, the earlier run's run.json goes first and its other files that this run does not write go before
 * the renames, so the folder never shows two runs' files under one run.json. On failure, what this run wrote is
 * removed, and so is the folder when this run created it and it is empty again.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { FileError } from '../errors.js';

export const LOCK_NAME = '.eye4eye-run.lock';

export interface OutputFile {
  name: string;
  data: Buffer;
}

export interface ClaimOptions {
  /** Replace an earlier eye4eye run found in the folder (never other files). */
  overwrite?: boolean;
  /** Bytes the outputs will take at most (checked against the free space). */
  expectedBytes?: number;
  /** Free bytes for unprivileged users on the folder's file system (default: statfs). */
  freeBytes?: (dir: string) => number;
  /**
   * Whether a lock held by a live process or another machine may be taken over anyway (a queue worker holding the
   * job's queue lock knows the run that left it lost the job). Default: never.
   */
  takeOverLock?: (holder: { pid: number; host: string | undefined }) => boolean;
}

interface LockContent {
  pid: number;
  host: string;
  startedAt: string;
  /** Names being renamed into place (set just before the renames). */
  writing?: string[];
}

function errorText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function errorCode(cause: unknown): string | undefined {
  return cause instanceof Error && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
}

/** Whether process `pid` runs on this machine (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

const TEMP_PATTERN = /^\..+\.tmp-(\d+)-[a-z0-9]+$/;

function defaultFreeBytes(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

function formatMb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

function list(names: readonly string[], max = 6): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown}, ... (${names.length} in all)` : shown;
}

/** The earlier run's output names when `dir` holds exactly one eye4eye run (run.json + the files it lists). */
function earlierRun(dir: string, entries: readonly string[]): string[] | undefined {
  if (!entries.includes('run.json')) return undefined;
  try {
    const record = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { tool?: unknown; outputs?: unknown };
    if (record.tool !== 'eye4eye' || !Array.isArray(record.outputs)) return undefined;
    const outputs = record.outputs.filter((o): o is string => typeof o === 'string' && !o.includes('/') && !o.includes(sep) && o !== '..');
    return entries.every((e) => e === 'run.json' || outputs.includes(e)) ? [...new Set([...outputs, 'run.json'])] : undefined;
  } catch {
    return undefined;
  }
}

export class RunFolder {
  private readonly temps: string[] = [];
  private released = false;

  private constructor(
    /** The folder, absolute. */
    readonly dir: string,
    /** The outermost folder this run created (removed again on failure when empty), if any. */
    private readonly createdRoot: string | undefined,
    /** Files of an earlier run (or of a killed one) that `write` replaces. */
    private readonly previous: readonly string[],
    private readonly lock: LockContent,
  ) {}

  /** Check and lock the output folder (see the file comment); a FileError names the folder and what to do. */
  static claim(outDir: string, options: ClaimOptions = {}): RunFolder {
    const dir = resolve(outDir);
    let createdRoot: string | undefined;
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory())
        throw new FileError(`${dir}: --out names a file, not a folder`, { hint: 'give --out a new or empty folder (it is created when missing)' });
    } else {
      try {
        createdRoot = mkdirSync(dir, { recursive: true });
      } catch (cause) {
        throw new FileError(`${dir}: cannot create the output folder (${errorText(cause)})`, { cause, hint: 'give --out a folder you can write to' });
      }
    }
    const undo = (): void => removeEmptyFolders(dir, createdRoot);
    let lock: LockContent;
    let previousFromLock: string[] = [];
    try {
      const taken = takeLock(dir, options.takeOverLock);
      lock = taken.lock;
      previousFromLock = taken.interruptedOutputs;
    } catch (e) {
      undo();
      throw e;
    }
    const folder = (previous: readonly string[]): RunFolder => new RunFolder(dir, createdRoot, previous, lock);
    try {
      const free = (options.freeBytes ?? defaultFreeBytes)(dir);
      if (options.expectedBytes !== undefined && free < options.expectedBytes) {
        throw new FileError(`${dir}: ${formatMb(free)} free, the outputs need about ${formatMb(options.expectedBytes)}`, {
          hint: 'free some space or give --out a folder on another disk',
        });
      }
      const entries = readdirSync(dir).filter((e) => e !== LOCK_NAME && !TEMP_PATTERN.test(e));
      if (entries.length === 0) return folder([]);
      const earlier = earlierRun(dir, entries) ?? (entries.every((e) => previousFromLock.includes(e)) ? previousFromLock : undefined);
      if (earlier === undefined) {
        const foreign = entries.filter((e) => !previousFromLock.includes(e));
        throw new FileError(`${dir}: the output folder holds files that are not from an eye4eye run (${list(foreign)})`, {
          hint: 'eye4eye writes into a new or empty folder, or over an earlier eye4eye run with --overwrite; give --out another folder',
        });
      }
      if (options.overwrite !== true) {
        throw new FileError(`${dir}: the output folder holds an earlier run (${list(entries.sort())})`, {
          hint: 'pass --overwrite to replace that run, or give --out a new folder',
        });
      }
      return folder(earlier);
    } catch (e) {
      rmSync(join(dir, LOCK_NAME), { force: true });
      undo();
      throw e;
    }
  }

  /** Write the files (temporary names, then renames; run.json last); returns their paths. Releases the folder. */
  write(files: readonly OutputFile[]): string[] {
    if (this.released) throw new FileError(`${this.dir}: the output folder was released`);
    const ordered = [...files.filter((f) => f.name !== 'run.json'), ...files.filter((f) => f.name === 'run.json')];
    const written: string[] = [];
    try {
      for (const f of ordered) {
        const tmp = join(this.dir, `.${f.name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
        this.temps.push(tmp);
        writeFileSync(tmp, f.data);
      }
      const names = ordered.map((f) => f.name);
      writeFileSync(join(this.dir, LOCK_NAME), JSON.stringify({ ...this.lock, writing: names }));
      const stale = this.previous.filter((p) => !names.includes(p) || p === 'run.json');
      for (const p of stale.sort((a, b) => (a === 'run.json' ? -1 : b === 'run.json' ? 1 : 0))) removeFile(join(this.dir, p));
      ordered.forEach((f, i) => {
        renameSync(this.temps[i]!, join(this.dir, f.name));
        written.push(join(this.dir, f.name));
      });
      this.temps.length = 0;
      this.release();
      return written;
    } catch (cause) {
      for (const p of written) rmSync(p, { force: true });
      this.release();
      throw new FileError(`${this.dir}: cannot write the outputs (${errorText(cause)})`, { cause });
    }
  }

  /** Give the folder up without writing (failure, Ctrl-C): remove our temporary files, the lock, and the folder if we made it. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.temps) rmSync(t, { force: true });
    this.temps.length = 0;
    rmSync(join(this.dir, LOCK_NAME), { force: true });
    removeEmptyFolders(this.dir, this.createdRoot);
  }
}

function removeFile(path: string): void {
  try {
    if (statSync(path).isFile()) rmSync(path);
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw e;
  }
}

/** Remove `dir` and its parents up to `createdRoot` while they are empty (only folders this run created). */
function removeEmptyFolders(dir: string, createdRoot: string | undefined): void {
  if (createdRoot === undefined) return;
  let current = dir;
  for (;;) {
    try {
      if (readdirSync(current).length > 0) return;
      rmdirSync(current);
    } catch {
      return;
    }
    if (current === createdRoot || relative(createdRoot, current).startsWith('..')) return;
    current = dirname(current);
  }
}

/** Exclusive lock; a lock of a process that is gone is taken over (with the outputs it was renaming, if any). */
function takeLock(dir: string, takeOver?: ClaimOptions['takeOverLock']): { lock: LockContent; interruptedOutputs: string[] } {
  const lock: LockContent = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const path = join(dir, LOCK_NAME);
  let interruptedOutputs: string[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (cause) {
      if (errorCode(cause) !== 'EEXIST')
        throw new FileError(`${dir}: the output folder is not writable (${errorText(cause)})`, { cause, hint: 'give --out a folder you can write to' });
      let other: Partial<LockContent> = {};
      try {
        other = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContent>;
      } catch {
        // unreadable or half-written lock: judged by its (missing) pid below
      }
      const sameHost = other.host === undefined || other.host === lock.host;
      if (typeof other.pid === 'number' && (!sameHost || processAlive(other.pid)) && takeOver?.({ pid: other.pid, host: other.host }) !== true) {
        throw new FileError(
          `${dir}: the output folder is in use by another eye4eye run (pid ${other.pid}${sameHost ? '' : ` on ${other.host}`}, started ${other.startedAt ?? 'at an unknown time'})`,
          { hint: 'wait for it to finish, or give --out another folder' },
        );
      }
      // The run that held it was killed: its temporary files and lock are ours to clean.
      interruptedOutputs = Array.isArray(other.writing) ? other.writing.filter((w): w is string => typeof w === 'string') : [];
      for (const e of readdirSync(dir)) {
        const m = TEMP_PATTERN.exec(e);
        if (m !== null && !processAlive(Number(m[1]))) rmSync(join(dir, e), { force: true });
      }
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(lock));
    } finally {
      closeSync(fd);
    }
    return { lock, interruptedOutputs };
  }
  throw new FileError(`${dir}: could not lock the output folder (another run keeps taking it)`);
}

/** An upper bound of the bytes the pictures of a W x H run take (PNG never grows much beyond the raw pixels). */
export function expectedOutputBytes(width: number, height: number, masks: number): number {
  const rgb = 3 * width * (height + 40);
  return Math.ceil(1.1 * (rgb * (1 + 3 + 2) + masks * width * height)) + 256 * 1024;
}
