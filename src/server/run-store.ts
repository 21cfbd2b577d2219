/**
 * The output folder: one sub-folder per run (`<outDir>/<run id>/`, created for the run and written atomically), the
 * list of past runs (every sub-folder with a run.json), and reading one file of one run with
 * names checked so that nothing outside the output folder can be reached.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { FileError } from '../errors.js';
import { HttpError } from './http.js';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}\.(png|json|jpg|jpeg|webp)$/;

export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.json': 'application/json; charset=utf-8',
});

/** A new run id: UTC date and time, then 6 random hex digits (sorts by time). */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace(/\.\d+Z$/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new HttpError(400, 'E_RUN_ID', `'${id}' is not a run id (letters, digits, '-' and '_')`);
  return id;
}

export interface RunSummary {
  id: string;
  createdAt: string | null;
  domain: string | null;
  files: string[];
  hasMatches: boolean;
}

/** Past runs of the output folder, newest first. */
export function listRuns(outDir: string): RunSummary[] {
  if (!existsSync(outDir)) return [];
  const runs: RunSummary[] = [];
  for (const entry of readdirSync(outDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !RUN_ID.test(entry.name)) continue;
    const record = join(outDir, entry.name, 'run.json');
    if (!existsSync(record)) continue;
    let parsed: { createdAt?: unknown; options?: { domain?: unknown } } = {};
    try {
      parsed = JSON.parse(readFileSync(record, 'utf8')) as typeof parsed;
    } catch {
      // An unreadable run.json still lists the run (its files can be fetched).
    }
    const files = readdirSync(join(outDir, entry.name)).filter((f) => FILE_NAME.test(f));
    runs.push({
      id: entry.name,
      createdAt: typeof parsed.createdAt === 'string' ? parsed.createdAt : null,
      domain: typeof parsed.options?.domain === 'string' ? parsed.options.domain : null,
      files: files.sort(),
      hasMatches: files.includes('matches.json'),
    });
  }
  return runs.sort((a, b) => (b.createdAt ?? b.id).localeCompare(a.createdAt ?? a.id));
}

/** One file of one run, or a 404; names are checked by pattern and the real path must lie inside the output folder. */
export function readRunFile(outDir: string, id: string, name: string): { data: Buffer; contentType: string } {
  checkRunId(id);
  if (!FILE_NAME.test(name)) throw new HttpError(400, 'E_FILE_NAME', `'${name}' is not a run file name`);
  const notFound = new HttpError(404, 'E_NOT_FOUND', `run ${id} has no file ${name}`);
  if (!existsSync(outDir)) throw notFound;
  const root = realpathSync(outDir);
  const path = join(root, id, name);
  if (!existsSync(path)) throw notFound;
  const real = realpathSync(path);
  if (!real.startsWith(root + sep) || !statSync(real).isFile()) throw notFound;
  return { data: readFileSync(real), contentType: CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream' };
}

/**
 * Write a finished run's folder `<outDir>/<id>/`: the folder is created for this run (never an existing one), every
 * file goes to a temporary name and is renamed, run.json last; on any failure the folder is removed again, so a
 * folder with a run.json is always complete.
 */
export function writeRunFolder(outDir: string, id: string, files: readonly { name: string; data: Uint8Array }[]): string {
  checkRunId(id);
  const dir = join(resolve(outDir), id);
  try {
    mkdirSync(resolve(outDir), { recursive: true });
    mkdirSync(dir);
  } catch (cause) {
    throw new FileError(`${dir}: cannot create the run folder (${(cause as Error).message})`, { cause });
  }
  try {
    const ordered = [...files.filter((f) => f.name !== 'run.json'), ...files.filter((f) => f.name === 'run.json')];
    const temps = ordered.map((f) => join(dir, `.${f.name}.tmp-${randomBytes(4).toString('hex')}`));
    ordered.forEach((f, i) => writeFileSync(temps[i]!, f.data));
    ordered.forEach((f, i) => renameSync(temps[i]!, join(dir, f.name)));
    return dir;
  } catch (cause) {
    rmSync(dir, { recursive: true, force: true });
    throw new FileError(`${dir}: cannot write the run's files (${(cause as Error).message})`, { cause });
  }
}
