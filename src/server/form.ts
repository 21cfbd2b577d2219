/**
 * The transfer options as the page sees them: the fields rendered from the CLI's option table (the library's one
 * table of user options), and the page's text values turned into TransferOptions by the same parsers and the same
 * validator as `eye4eye transfer`, so the page shows the library's messages.
 */
import { InvalidParameterError } from '../errors.js';
import { flagOf, optionsFromFlags, TRANSFER_CLI_OPTIONS, UsageError, type CliFlag } from '../cli/options-table.js';
import { DEFAULT_TRANSFER_OPTIONS, METHOD_NAMES, TRANSFER_OPTION_KEYS, validateTransferOptions, type TransferOptions } from '../pipeline/options.js';
import { HttpError } from './http.js';

/** Options the server fixes when it starts (models, device, caches) or the page gives another way (masks). */
export const SERVER_FIXED_OPTIONS: readonly (keyof TransferOptions)[] = ['device', 'precision', 'cacheDir', 'structureMask', 'appearanceMask'];

export interface FormField {
  key: string;
  flag: string;
  type: 'string' | 'boolean';
  valueName: string | null;
  description: string;
  /** The default as the field's text ('' when none). */
  default: string;
  /** Allowed values when the table lists them (A|B). */
  choices: string[] | null;
  required: boolean;
}

function defaultText(key: string): string {
  const v = (DEFAULT_TRANSFER_OPTIONS as Record<string, unknown>)[key];
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.join(',');
  return typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** The page's fields, in the library's option order. */
export function formFields(): FormField[] {
  const fields: FormField[] = [];
  for (const key of TRANSFER_OPTION_KEYS) {
    const f = (TRANSFER_CLI_OPTIONS as Record<string, CliFlag<unknown> | null>)[key];
    if (f === null || f === undefined || SERVER_FIXED_OPTIONS.includes(key)) continue;
    const valueName = f.valueName ?? null;
    fields.push({
      key,
      flag: f.flag,
      type: f.type,
      valueName,
      description: f.description,
      default: key === 'injection' ? '' : defaultText(key),
      choices: key === 'method' ? [...METHOD_NAMES] : valueName !== null && valueName.includes('|') ? valueName.split('|') : null,
      required: key === 'domain',
    });
  }
  return fields;
}

function asParameterError(e: unknown): never {
  if (e instanceof UsageError) throw new HttpError(400, 'E_INVALID_PARAMETER', e.message, { flag: /^--([\w-]+)/.exec(e.message)?.[1] ?? null });
  if (e instanceof InvalidParameterError) {
    const flag = e.parameter === undefined ? undefined : flagOf(e.parameter);
    throw new HttpError(400, e.code, e.message, { parameter: e.parameter ?? null, flag: flag === undefined ? null : flag.slice(2) });
  }
  throw e;
}

/** Options from the page's field texts (keyed by flag; empty texts are left to the defaults). */
export function optionsFromForm(form: unknown): TransferOptions {
  if (form === null || typeof form !== 'object' || Array.isArray(form))
    throw new HttpError(400, 'E_INVALID_PARAMETER', "'form' must be an object of flag: text");
  const allowed = new Map(formFields().map((f) => [f.flag, f]));
  const values: Record<string, string | boolean> = {};
  for (const [flag, raw] of Object.entries(form as Record<string, unknown>)) {
    const field = allowed.get(flag);
    if (field === undefined) throw new HttpError(400, 'E_INVALID_PARAMETER', `unknown field '${flag}' (fields: ${[...allowed.keys()].join(', ')})`, { flag });
    if (field.type === 'boolean') {
      if (typeof raw !== 'boolean') throw new HttpError(400, 'E_INVALID_PARAMETER', `field '${flag}' must be true or false`, { flag });
      if (raw) values[flag] = true;
    } else {
      if (typeof raw !== 'string') throw new HttpError(400, 'E_INVALID_PARAMETER', `field '${flag}' must be text`, { flag });
      if (raw.trim() !== '') values[flag] = raw;
    }
  }
  try {
    return checkOptions(optionsFromFlags(values));
  } catch (e) {
    return asParameterError(e);
  }
}

/** Validate typed options from a request: the library's validator, and none of the server-fixed options. */
export function checkOptions(options: unknown): TransferOptions {
  if (options !== null && typeof options === 'object' && !Array.isArray(options)) {
    for (const key of SERVER_FIXED_OPTIONS) {
      if (key in options)
        throw new HttpError(
          400,
          'E_INVALID_PARAMETER',
          `option '${key}' is set when the server starts (or, for masks, by the structureMask / appearanceMask fields), not per request`,
          {
            parameter: key,
          },
        );
    }
  }
  try {
    return validateTransferOptions(options);
  } catch (e) {
    return asParameterError(e);
  }
}
