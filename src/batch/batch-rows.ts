/**
 * One batch row -> one transfer: the inputs (paths relative to the batch file's folder), TransferOptions validated
 * by the library, the row id (an `id` column, else `row-<n>`) and the options hash that tells a later run whether
 * the row's output is still the row's.
 *
 * Columns are named like TransferOptions keys (numSteps, structureBox, ...) or like the transfer command's flags
 * (steps, structure-box, ...). Text values are read with the flag's parser (so `structure-box` is "x0,y0,x1,y1"; points
 * are "x,y,L" separated by ';'; boolean flags take true/false/yes/no/1/0); JSON Lines values may also be JSON
 * numbers, arrays and booleans (validated as the library's options). A mistake fails its row with a message naming
 * the row, the column and the value; the batch goes on with the others.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { E4EError, InvalidParameterError } from '../errors.js';
import { TRANSFER_CLI_OPTIONS, UsageError, type CliFlag } from '../cli/options-table.js';
import { TRANSFER_OPTION_KEYS, validateTransferOptions, type TransferOptions } from '../pipeline/options.js';
import type { RawRow } from './batch-file.js';

/** Options set for the whole batch (the models are loaded once): a row may not set them. */
export const BATCH_LEVEL_OPTIONS: readonly (keyof TransferOptions)[] = ['device', 'precision', 'cacheDir'];

const PATH_KEYS = ['structure', 'appearance', 'structureMask', 'appearanceMask'] as const;

export const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface BatchRow {
  row: number;
  line: number;
  id: string;
  structure: string;
  appearance: string;
  options: TransferOptions;
  /** sha256 (hex) of the options and the contents of every input file. */
  optionsHash: string;
  /** Whether the row gave the ranges (else the defaults scaled to its schedule). */
  given: { featRange: boolean; adainRange: boolean };
}

/** A row that could not become a transfer: its message names the row and what is wrong. */
export interface RowProblem {
  row: number;
  line: number;
  id: string;
  error: string;
}

const flagToKey = new Map<string, keyof TransferOptions>();
for (const [key, f] of Object.entries(TRANSFER_CLI_OPTIONS) as [keyof TransferOptions, CliFlag<unknown> | null][]) {
  if (f !== null) flagToKey.set(f.flag, key);
}

function parseBoolean(column: string, raw: string): boolean {
  const v = raw.toLowerCase();
  if (['true', 'yes', '1'].includes(v)) return true;
  if (['false', 'no', '0'].includes(v)) return false;
  throw new UsageError(`column '${column}': expected true or false but received '${raw}'`);
}

/** The value of one option column as the library takes it. */
function optionValue(column: string, key: keyof TransferOptions, value: unknown): unknown {
  const f = TRANSFER_CLI_OPTIONS[key] as CliFlag<unknown> | null;
  const byFlag = f !== null && column === f.flag && column !== key;
  if (f === null) return value;
  if (f.type === 'boolean') {
    const b = typeof value === 'boolean' ? value : typeof value === 'string' ? parseBoolean(column, value) : value;
    if (typeof b !== 'boolean') throw new UsageError(`column '${column}': expected true or false but received ${JSON.stringify(value)}`);
    // By flag name the column means the flag (v-injection: true); by key, the option's own value (injection: vInjection).
    if (byFlag) return f.parse(b);
    if (key === 'maskedAdain') return b;
    return value;
  }
  if (typeof value !== 'string') return value;
  if (f.multiple === true)
    return f.parse(
      value
        .split(';')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
  return f.parse(value);
}

function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The hash of a row's transfer: its validated options with every input file's content (not its path). */
export function rowOptionsHash(structure: string, appearance: string, options: TransferOptions, model: string): string {
  const files: Record<string, string> = { structure: fileHash(structure), appearance: fileHash(appearance) };
  const rest: Record<string, unknown> = { ...options };
  for (const k of ['structureMask', 'appearanceMask'] as const) {
    const v = options[k];
    if (typeof v === 'string') files[k] = fileHash(v);
    delete rest[k];
  }
  delete rest['cacheDir'];
  const canonical = JSON.stringify({ files, options: Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))), model });
  return createHash('sha256').update(canonical).digest('hex');
}

export interface RowContext {
  /** The batch file's folder: relative paths start there. */
  baseDir: string;
  /** Batch-level options every row takes (device, precision, cacheDir). */
  batchOptions: Partial<Pick<TransferOptions, 'device' | 'precision' | 'cacheDir'>>;
  /** The model argument (part of the hash). */
  model: string;
}

/** The row id: the `id` column (checked to be a safe folder name) or row-<n>. */
export function rowId(raw: RawRow): string {
  const id = raw.fields['id'];
  if (id === undefined) return `row-${raw.row}`;
  const s = typeof id === 'number' ? String(id) : typeof id === 'string' ? id.trim() : undefined;
  if (s === undefined || !SAFE_ID.test(s) || s === '.' || s === '..') {
    throw new UsageError(
      `column 'id': ${JSON.stringify(id)} is not a safe folder name (letters, digits, '.', '_', '-', starting with a letter or digit, at most 100 characters)`,
    );
  }
  return s;
}

/** Turn a raw row into a transfer; throws UsageError / E4EError with the problem (not yet prefixed by the row). */
export function parseRow(raw: RawRow, ctx: RowContext): BatchRow {
  const id = rowId(raw);
  const input: Record<string, unknown> = {};
  const paths: Partial<Record<(typeof PATH_KEYS)[number], string>> = {};
  const seen = new Map<string, string>();
  for (const [column, value] of Object.entries(raw.fields)) {
    if (column === 'id') continue;
    const key: string | undefined =
      column === 'structure' || column === 'appearance'
        ? column
        : (TRANSFER_OPTION_KEYS as readonly string[]).includes(column)
          ? column
          : flagToKey.get(column);
    if (key === undefined) {
      throw new UsageError(
        `unknown column '${column}' (columns: id, structure, appearance, and the transfer options by name or flag, e.g. domain, steps, structure-mask, structure-box)`,
      );
    }
    if (seen.has(key)) throw new UsageError(`columns '${seen.get(key)}' and '${column}' set the same option; give one`);
    seen.set(key, column);
    if ((BATCH_LEVEL_OPTIONS as readonly string[]).includes(key)) {
      throw new UsageError(`column '${column}': ${key} is set for the whole batch (the models are loaded once); pass it to eye4eye batch instead`);
    }
    if ((PATH_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'string' || value === '') throw new UsageError(`column '${column}': expected a file path but received ${JSON.stringify(value)}`);
      const p = resolve(ctx.baseDir, value);
      if (!existsSync(p) || !statSync(p).isFile()) throw new UsageError(`column '${column}': ${p}: no such file`);
      paths[key as (typeof PATH_KEYS)[number]] = p;
      if (key === 'structureMask' || key === 'appearanceMask') input[key] = p;
      continue;
    }
    try {
      input[key] = optionValue(column, key as keyof TransferOptions, value);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(e.message.replace(/^--[a-z0-9-]+:/, `column '${column}':`));
      throw e;
    }
  }
  for (const required of ['structure', 'appearance'] as const) {
    if (paths[required] === undefined) throw new UsageError(`missing column '${required}' (the ${required} image's path)`);
  }
  if (input['domain'] === undefined) throw new UsageError(`missing column 'domain' (the object class, e.g. bird)`);
  let options: TransferOptions;
  try {
    options = validateTransferOptions({ ...input, ...ctx.batchOptions });
  } catch (e) {
    if (e instanceof InvalidParameterError && e.parameter !== undefined) {
      const column = seen.get(e.parameter) ?? e.parameter;
      throw new UsageError(`column '${column}': ${e.message}`);
    }
    throw e;
  }
  const structure = paths.structure!;
  const appearance = paths.appearance!;
  return {
    row: raw.row,
    line: raw.line,
    id,
    structure,
    appearance,
    options,
    optionsHash: rowOptionsHash(structure, appearance, options, ctx.model),
    given: { featRange: input['featRange'] !== undefined, adainRange: input['adainRange'] !== undefined },
  };
}

/** Every row parsed: the transfers, and the rows that cannot be (with their message); duplicate ids fail both rows. */
export function parseRows(rows: readonly RawRow[], batchPath: string, ctx: Omit<RowContext, 'baseDir'>): { rows: BatchRow[]; problems: RowProblem[] } {
  const full: RowContext = { ...ctx, baseDir: dirname(batchPath) };
  const ok: BatchRow[] = [];
  const problems: RowProblem[] = [];
  const ids = new Map<string, number>();
  for (const raw of rows) {
    let id: string;
    try {
      id = rowId(raw);
    } catch (e) {
      problems.push({ row: raw.row, line: raw.line, id: `row-${raw.row}`, error: describe(raw, e) });
      continue;
    }
    const other = ids.get(id);
    if (other !== undefined) {
      problems.push({
        row: raw.row,
        line: raw.line,
        id: `row-${raw.row}`,
        error: `row ${raw.row} (line ${raw.line}): id '${id}' is used by row ${other} too; ids must differ`,
      });
      continue;
    }
    ids.set(id, raw.row);
    try {
      ok.push(parseRow(raw, full));
    } catch (e) {
      if (!(e instanceof UsageError) && !(e instanceof E4EError)) throw e;
      problems.push({ row: raw.row, line: raw.line, id, error: describe(raw, e) });
    }
  }
  return { rows: ok, problems };
}

export function describe(raw: Pick<RawRow, 'row' | 'line'>, e: unknown): string {
  const message = e instanceof E4EError ? `${e.name} [${e.code}]: ${e.message}` : e instanceof Error ? e.message : String(e);
  return `row ${raw.row} (line ${raw.line}): ${message}`;
}
