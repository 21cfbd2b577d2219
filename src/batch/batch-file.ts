/**
 * Batch files of `eye4eye batch`: CSV (a header row, then one row per transfer; RFC 4180 quoting: fields in double
 * quotes may hold commas, quotes doubled, line breaks) or JSON Lines (one object per line). The format comes from the
 * extension (.csv; .jsonl / .ndjson), else from the first character ('{' = JSON Lines).
 *
 * A malformed file is an error naming the file, line and column (an unterminated quote, a row with more or fewer
 * fields than the header, a line that is not a JSON object); empty lines are skipped. What the fields mean is the
 * row parser's concern (batch-rows.ts), so one bad value fails one row, not the file.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { FileError } from '../errors.js';

export type BatchFormat = 'csv' | 'jsonl';

export interface RawRow {
  /** 1-based number of the row among the data rows (the header is not a row). */
  row: number;
  /** 1-based line of the file where the row starts. */
  line: number;
  /** Column (or key) -> value: CSV values are text, JSON Lines values as written (empty CSV cells are left out). */
  fields: Record<string, unknown>;
}

export interface BatchFile {
  path: string;
  format: BatchFormat;
  rows: RawRow[];
}

export function detectFormat(path: string, text: string): BatchFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return text.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}

/** Read and parse a batch file (FileError naming line and column when it is malformed). */
export function readBatchFile(path: string): BatchFile {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (cause) {
    throw new FileError(`${abs}: cannot read the batch file (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const format = detectFormat(abs, text);
  const rows = format === 'csv' ? parseCsv(abs, text) : parseJsonLines(abs, text);
  if (rows.length === 0)
    throw new FileError(`${abs}: the batch file has no rows`, { hint: 'one row per transfer (CSV after a header row, or one JSON object per line)' });
  return { path: abs, format, rows };
}

interface CsvRecord {
  line: number;
  fields: { value: string; column: number }[];
}

/** RFC 4180 records with the line and column where each starts. */
function csvRecords(path: string, text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const n = text.length;
  while (i < n) {
    // skip empty lines
    if (text[i] === '\n' || text[i] === '\r') {
      if (text[i] === '\r' && text[i + 1] === '\n') i++;
      i++;
      line++;
      col = 1;
      continue;
    }
    const record: CsvRecord = { line, fields: [] };
    for (;;) {
      const startCol = col;
      let value = '';
      if (text[i] === '"') {
        const qLine = line;
        const qCol = col;
        i++;
        col++;
        for (;;) {
          if (i >= n) throw new FileError(`${path}:${qLine}:${qCol}: unterminated quoted field (a '"' opens it and none closes it)`);
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              col += 2;
              continue;
            }
            i++;
            col++;
            break;
          }
          if (c === '\n') {
            line++;
            col = 1;
          } else col++;
          value += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          throw new FileError(`${path}:${line}:${col}: unexpected '${text[i]}' after a quoted field (expected ',' or the end of the line)`);
        }
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') throw new FileError(`${path}:${line}:${col}: a '"' inside an unquoted field (quote the whole field and double the '"')`);
          value += text[i];
          i++;
          col++;
        }
      }
      record.fields.push({ value, column: startCol });
      if (i < n && text[i] === ',') {
        i++;
        col++;
        continue;
      }
      break;
    }
    records.push(record);
    if (text[i] === '\r' && text[i + 1] === '\n') i++;
    i++;
    line++;
    col = 1;
  }
  return records;
}

function parseCsv(path: string, text: string): RawRow[] {
  const records = csvRecords(path, text);
  if (records.length === 0) return [];
  const header = records[0]!;
  const names = header.fields.map((f) => f.value.trim());
  const seen = new Map<string, number>();
  for (const [k, name] of names.entries()) {
    const column = header.fields[k]!.column;
    if (name === '') throw new FileError(`${path}:${header.line}:${column}: empty column name in the header row`);
    if (seen.has(name))
      throw new FileError(`${path}:${header.line}:${column}: column '${name}' is named twice in the header row (also column ${seen.get(name)})`);
    seen.set(name, column);
  }
  return records.slice(1).map((r, k) => {
    if (r.fields.length !== names.length) {
      const where = r.fields.length > names.length ? r.fields[names.length]!.column : (r.fields.at(-1)?.column ?? 1);
      throw new FileError(`${path}:${r.line}:${where}: the row has ${r.fields.length} fields but the header names ${names.length} columns`, {
        hint: 'quote fields that hold commas, e.g. "10,10,50,50"',
      });
    }
    const fields: Record<string, unknown> = {};
    r.fields.forEach((f, j) => {
      const v = f.value.trim();
      if (v !== '') fields[names[j]!] = v;
    });
    return { row: k + 1, line: r.line, fields };
  });
}

/** Line and column of a JSON.parse error in `s`, if its message names a position. */
function jsonErrorColumn(message: string): number | undefined {
  const m = /position (\d+)/.exec(message);
  return m === null ? undefined : Number(m[1]) + 1;
}

function parseJsonLines(path: string, text: string): RawRow[] {
  const rows: RawRow[] = [];
  text.split('\n').forEach((raw, k) => {
    const lineText = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (lineText.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const column = jsonErrorColumn(message) ?? 1;
      throw new FileError(`${path}:${k + 1}:${column}: not valid JSON (${message})`, { hint: 'JSON Lines: one JSON object per line' });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const col = lineText.length - lineText.trimStart().length + 1;
      throw new FileError(
        `${path}:${k + 1}:${col}: expected a JSON object ({"structure": ..., "appearance": ..., "domain": ...}) but found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
      );
    }
    rows.push({ row: rows.length + 1, line: k + 1, fields: value as Record<string, unknown> });
  });
  return rows;
}
