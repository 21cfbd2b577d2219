/**
 * Field readers shared by the config parsers. Each reader takes the config-key name as diffusers spells it, the
 * diffusers default (used when the key is absent), and throws a ConfigError naming the file and the field:
 *
 *   unet/config.json: field 'block_out_channels' must be an array of positive integers, got [320, -1]
 */
import { readFileSync } from 'node:fs';
import { ConfigError, FileError } from '../errors.js';

/** Render a config value for an error message (JSON, with `undefined` spelled out). */
export function showValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Read and JSON.parse a config file: FileError if it cannot be read, ConfigError if it is not JSON. */
export function loadJsonConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileError(`${path}: config file not found`, { cause, hint: 'check the model folder layout' });
    throw new FileError(`${path}: cannot read config file (${(cause as Error).message})`, { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ConfigError(`${path}: invalid JSON (${(cause as Error).message})`, { cause });
  }
}

/** Deep-freeze plain objects and arrays (configs are immutable once parsed). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

type Check<T> = (value: unknown) => value is T;

export const isPositiveInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
export const isNonNegativeInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
export const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isPositiveNumber = (v: unknown): v is number => isFiniteNumber(v) && v > 0;
export const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
export const isString = (v: unknown): v is string => typeof v === 'string';

export class ConfigReader {
  readonly json: Readonly<Record<string, unknown>>;
  readonly path: string;

  private constructor(json: Record<string, unknown>, path: string) {
    this.json = json;
    this.path = path;
  }

  /** Wrap a parsed JSON value; it must be an object. */
  static from(json: unknown, path: string): ConfigReader {
    if (!isRecord(json)) throw new ConfigError(`${path}: config must be a JSON object, got ${showValue(json)}`);
    return new ConfigReader(json, path);
  }

  /** The raw value (undefined when absent). */
  raw(field: string): unknown {
    return Object.hasOwn(this.json, field) ? this.json[field] : undefined;
  }

  has(field: string): boolean {
    return Object.hasOwn(this.json, field);
  }

  invalid(field: string, expected: string, value: unknown): ConfigError {
    return new ConfigError(`${this.path}: field '${field}' must be ${expected}, got ${showValue(value)}`);
  }

  unsupported(field: string, value: unknown, supported: string): ConfigError {
    return new ConfigError(`${this.path}: field '${field}' = ${showValue(value)} is not supported (supported: ${supported})`);
  }

  /** A value checked with `check`; `fallback` when absent. */
  get<T>(field: string, check: Check<T>, expected: string, fallback: T): T {
    const value = this.raw(field);
    if (value === undefined) return fallback;
    if (!check(value)) throw this.invalid(field, expected, value);
    return value;
  }

  /** Like get, but also accepts null (returned as null). */
  nullable<T>(field: string, check: Check<T>, expected: string, fallback: T | null): T | null {
    const value = this.raw(field);
    if (value === undefined) return fallback;
    if (value === null) return null;
    if (!check(value)) throw this.invalid(field, `${expected} or null`, value);
    return value;
  }

  positiveInt(field: string, fallback: number): number {
    return this.get(field, isPositiveInt, 'a positive integer', fallback);
  }

  nonNegativeInt(field: string, fallback: number): number {
    return this.get(field, isNonNegativeInt, 'a non-negative integer', fallback);
  }

  int(field: string, fallback: number): number {
    return this.get(field, isInt, 'an integer', fallback);
  }

  number(field: string, fallback: number): number {
    return this.get(field, isFiniteNumber, 'a finite number', fallback);
  }

  positiveNumber(field: string, fallback: number): number {
    return this.get(field, isPositiveNumber, 'a positive number', fallback);
  }

  boolean(field: string, fallback: boolean): boolean {
    return this.get(field, isBoolean, 'a boolean', fallback);
  }

  string(field: string, fallback: string): string {
    return this.get(field, isString, 'a string', fallback);
  }

  /** A string from `supported`; other strings are "not supported", other types invalid. */
  choice<T extends string>(field: string, supported: readonly T[], fallback: T): T {
    const value = this.string(field, fallback);
    if (!(supported as readonly string[]).includes(value)) throw this.unsupported(field, value, supported.map((s) => `"${s}"`).join(', '));
    return value as T;
  }

  /** A field that must keep its default (null / false / a fixed value); anything else is unsupported. */
  fixed(field: string, allowed: unknown): void {
    const value = this.raw(field);
    if (value === undefined || value === allowed) return;
    throw this.unsupported(field, value, showValue(allowed));
  }

  /** An array of `expected` items of the given length (when `length` is given). */
  array<T>(field: string, check: Check<T>, expected: string, fallback: readonly T[], length?: number): T[] {
    const value = this.raw(field);
    if (value === undefined) return [...fallback];
    if (!Array.isArray(value) || value.length === 0 || !value.every((v) => check(v))) {
      throw this.invalid(field, `a non-empty array of ${expected}`, value);
    }
    if (length !== undefined && value.length !== length) {
      throw this.invalid(field, `an array of ${length} ${expected} (one per block)`, value);
    }
    return [...value];
  }

  /** A scalar broadcast to `length` entries, or an array of exactly `length` entries. */
  perBlock<T>(field: string, check: Check<T>, expected: string, fallback: T, length: number): T[] {
    const value = this.raw(field);
    if (value === undefined) return new Array<T>(length).fill(fallback);
    if (check(value)) return new Array<T>(length).fill(value);
    if (Array.isArray(value) && value.length === length && value.every((v) => check(v))) return [...value];
    throw this.invalid(field, `${expected} or an array of ${length} of them (one per block)`, value);
  }
}
