/**
 * Reader of a golden case folder produced by the official Eye-for-an-eye code (see shared/golden/README.md):
 *
 *   <dir>/io.json          documents each tensor (shape, dtype, role, meaning, params) + run config + tolerances
 *   <dir>/io.safetensors   the tensors themselves
 *   <dir>/model/           the model in the diffusers layout (optional: only groups that run a model need it;
 *                          GoldenContext.model() says so when it is missing)
 *
 * Every tensor io.json lists is checked against the file header when the case is loaded.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GoldenError } from '../errors.js';
import { formatDims, sameDims, type Tensor } from '../tensor/tensor.js';
import { SafetensorsFile } from '../io/safetensors.js';

export interface GoldenTensorMeta {
  shape: number[];
  dtype: string;
  role?: string;
  meaning?: string;
  producer?: string;
  params?: Record<string, unknown>;
}

export interface GoldenCase {
  dir: string;
  modelDir: string;
  /** The whole io.json. */
  meta: Record<string, unknown>;
  tensors: Record<string, GoldenTensorMeta>;
  runConfig: Record<string, unknown>;
  /** Names of the tensors io.json lists, sorted. */
  names(): string[];
  has(name: string): boolean;
  /** float16/bfloat16 widened to float32; integer and other dtypes as stored. */
  get(name: string): Tensor;
  /** io.json recommended_tolerances by longest matching prefix; default rtol 1e-3, atol 1e-4. */
  tolerance(name: string): { rtol: number; atol: number };
  close(): void;
}

/** The group of a tensor: the first dot-separated part of its name (`unet_e4e_match.out` -> `unet_e4e_match`). */
export function groupOf(name: string): string {
  return name.split('.')[0] ?? name;
}

export const DEFAULT_GOLDEN_TOLERANCE: Readonly<{ rtol: number; atol: number }> = Object.freeze({ rtol: 1e-3, atol: 1e-4 });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseTensorMeta(dir: string, name: string, value: unknown): GoldenTensorMeta {
  if (
    !isRecord(value) ||
    !Array.isArray(value['shape']) ||
    !value['shape'].every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ||
    typeof value['dtype'] !== 'string'
  ) {
    throw new GoldenError(`${dir}: io.json entry for tensor '${name}' must have an integer 'shape' array and a 'dtype' string`);
  }
  const meta: GoldenTensorMeta = { shape: [...(value['shape'] as number[])], dtype: value['dtype'] };
  if (typeof value['role'] === 'string') meta.role = value['role'];
  if (typeof value['meaning'] === 'string') meta.meaning = value['meaning'];
  if (typeof value['producer'] === 'string') meta.producer = value['producer'];
  if (isRecord(value['params'])) meta.params = value['params'];
  return meta;
}

function parseTolerances(dir: string, value: unknown): [string, { rtol: number; atol: number }][] {
  if (value === undefined) return [];
  if (!isRecord(value)) throw new GoldenError(`${dir}: io.json 'recommended_tolerances' must be an object of prefix -> [rtol, atol]`);
  return Object.entries(value).map(([prefix, pair]) => {
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => typeof v === 'number' && v >= 0)) {
      throw new GoldenError(`${dir}: io.json recommended_tolerances['${prefix}'] must be [rtol, atol], got ${JSON.stringify(pair)}`);
    }
    return [prefix, { rtol: pair[0] as number, atol: pair[1] as number }];
  });
}

/** Open a golden case folder; throws GoldenError naming the folder and what is missing or inconsistent. */
export function loadGoldenCase(dir: string): GoldenCase {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new GoldenError(`${root}: golden case folder not found`, { hint: 'copy the case from shared/golden/ into test/fixtures/golden/' });
  }
  const jsonPath = join(root, 'io.json');
  const tensorsPath = join(root, 'io.safetensors');
  const modelDir = join(root, 'model');
  for (const [path, what] of [
    [jsonPath, 'io.json'],
    [tensorsPath, 'io.safetensors'],
  ] as const) {
    if (!existsSync(path)) throw new GoldenError(`${root}: golden case has no ${what}`, { hint: 'a golden case holds io.json, io.safetensors and model/' });
  }
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (cause) {
    throw new GoldenError(`${root}: io.json is not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (!isRecord(meta) || !isRecord(meta['tensors'])) throw new GoldenError(`${root}: io.json must be an object with a 'tensors' object`);
  const tensors: Record<string, GoldenTensorMeta> = {};
  for (const [name, value] of Object.entries(meta['tensors'])) tensors[name] = parseTensorMeta(root, name, value);
  const tolerances = parseTolerances(root, meta['recommended_tolerances']);
  const runConfig = isRecord(meta['run_config']) ? meta['run_config'] : {};

  const file = SafetensorsFile.open(tensorsPath);
  const problems: string[] = [];
  for (const [name, expected] of Object.entries(tensors)) {
    if (!file.has(name)) {
      problems.push(`tensor '${name}' is listed in io.json but missing from io.safetensors`);
      continue;
    }
    const info = file.info(name);
    if (!sameDims(info.dims, expected.shape)) {
      problems.push(`tensor '${name}' has shape ${formatDims(info.dims)} in io.safetensors but ${formatDims(expected.shape)} in io.json`);
    }
    if (info.dtype !== expected.dtype) {
      problems.push(`tensor '${name}' has dtype ${info.dtype} in io.safetensors but ${expected.dtype} in io.json`);
    }
  }
  if (problems.length > 0) {
    file.close();
    throw new GoldenError(`${root}: io.json and io.safetensors disagree:\n  ${problems.join('\n  ')}`);
  }

  const names = Object.keys(tensors).sort();
  return {
    dir: root,
    modelDir,
    meta,
    tensors,
    runConfig,
    names: () => [...names],
    has: (name) => Object.hasOwn(tensors, name),
    get(name) {
      if (!file.has(name)) throw new GoldenError(`${root}: no golden tensor named '${name}'`);
      return file.read(name, { widen: true });
    },
    tolerance(name) {
      let best: { prefix: string; tol: { rtol: number; atol: number } } | undefined;
      for (const [prefix, tol] of tolerances) {
        if (name.startsWith(prefix) && (best === undefined || prefix.length > best.prefix.length)) best = { prefix, tol };
      }
      return { ...(best?.tol ?? DEFAULT_GOLDEN_TOLERANCE) };
    },
    close: () => file.close(),
  };
}
