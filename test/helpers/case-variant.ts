/**
 * Temporary variants of the sd1-tiny golden case: io.json edited, tensors added / replaced / removed; model/ is a
 * link and io.safetensors is a link too unless tensors change. Removed with `cleanup()`.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTensorSource, writeSafetensors } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { sd1TinyDir } from './paths.js';

export type CaseMeta = Record<string, unknown> & {
  tensors: Record<string, Record<string, unknown>>;
  recommended_tolerances?: Record<string, [number, number]>;
};

export interface CaseVariant {
  dir: string;
  cleanup(): void;
}

export interface VariantOptions {
  /** Edit the parsed io.json in place. */
  edit?: (meta: CaseMeta) => void;
  /** Tensors to add or replace; each also gets an io.json entry from `entries` (or keeps its own). */
  tensors?: Record<string, Tensor>;
  /** io.json entries for added tensors (shape and dtype are filled in from the tensor). */
  entries?: Record<string, { role: string; meaning?: string; producer?: string; params?: Record<string, unknown> }>;
  /** Tensors to drop from both files. */
  remove?: readonly string[];
}

/** Every tensor of the sd1-tiny io.safetensors (for building variants). */
export function sd1TinyTensors(): Record<string, Tensor> {
  const source = openTensorSource(join(sd1TinyDir, 'io.safetensors'));
  const all: Record<string, Tensor> = {};
  for (const name of source.names()) all[name] = source.read(name);
  source.close();
  return all;
}

export function caseVariant(options: VariantOptions = {}): CaseVariant {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-case-'));
  symlinkSync(join(sd1TinyDir, 'model'), join(dir, 'model'));
  const meta = JSON.parse(readFileSync(join(sd1TinyDir, 'io.json'), 'utf8')) as CaseMeta;
  for (const [name, t] of Object.entries(options.tensors ?? {})) {
    const entry = options.entries?.[name] ?? meta.tensors[name] ?? { role: 'input' };
    meta.tensors[name] = { ...entry, shape: [...t.dims], dtype: t.dtype };
  }
  for (const name of options.remove ?? []) delete meta.tensors[name];
  options.edit?.(meta);
  writeFileSync(join(dir, 'io.json'), JSON.stringify(meta, null, 1));
  if (options.tensors === undefined && options.remove === undefined) {
    symlinkSync(join(sd1TinyDir, 'io.safetensors'), join(dir, 'io.safetensors'));
  } else {
    const all = { ...sd1TinyTensors(), ...options.tensors };
    for (const name of options.remove ?? []) delete all[name];
    writeSafetensors(join(dir, 'io.safetensors'), all);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
