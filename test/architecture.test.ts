/**
 * The dependency direction of docs/architecture.md, checked on the sources:
 *   errors, tensor, version -> io -> config -> onnx -> models -> runtime -> diffusion -> methods -> golden, pipeline -> cli
 * A module may import from its own layer or an earlier one. Only runtime/session.ts imports onnxruntime-node;
 * onnx/, models/ and the methods' processors touch neither files nor onnxruntime; a method folder imports no other
 * method folder (only methods/shared and methods/method.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { repoRoot } from './helpers/paths.js';

const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'tensor', 'version.ts'],
  ['io'],
  ['config'],
  ['onnx'],
  ['models'],
  ['runtime'],
  ['diffusion'],
  ['methods'],
  ['golden', 'pipeline'],
  ['cli', 'index.ts', 'server', 'batch', 'queue'],
];

const srcDir = join(repoRoot, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

function layerOf(file: string): number {
  const top = relative(srcDir, file).split(/[\\/]/)[0]!;
  const layer = LAYERS.findIndex((names) => names.includes(top));
  assert.ok(layer >= 0, `${relative(repoRoot, file)} is in no layer`);
  return layer;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

test('imports follow the layer order', () => {
  const violations: string[] = [];
  for (const file of sources(srcDir)) {
    const own = layerOf(file);
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (layerOf(target) > own) violations.push(`${relative(repoRoot, file)} imports ${relative(repoRoot, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('only runtime/session.ts imports onnxruntime-node; onnx/ and models/ use no fs and no sharp', () => {
  const ort: string[] = [];
  const impure: string[] = [];
  for (const file of sources(srcDir)) {
    const specs = imports(file);
    const rel = relative(srcDir, file);
    if (specs.includes('onnxruntime-node') && rel !== join('runtime', 'session.ts')) ort.push(rel);
    // Exceptions: onnx/save.ts writes the built graph; the CLIP tokenizer reads its vocabulary files (it builds no graph).
    const exempt = [join('onnx', 'save.ts'), join('models', 'clip', 'clip-tokenizer.ts')];
    const graphCode = rel.startsWith('onnx') || rel.startsWith('models') || /^methods[\\/][^\\/]+[\\/]processor\.ts$/.test(rel);
    if (graphCode && !exempt.includes(rel)) {
      if (specs.some((s) => s === 'node:fs' || s === 'sharp' || s === 'onnxruntime-node')) impure.push(rel);
    }
  }
  assert.deepEqual(ort, []);
  assert.deepEqual(impure, []);
});

test('a method folder imports no other method folder', () => {
  const methodsDir = join(srcDir, 'methods');
  const violations: string[] = [];
  for (const file of sources(methodsDir)) {
    const own = relative(methodsDir, file).split(/[\\/]/);
    if (own.length < 2 || own[0] === 'shared') continue;
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(methodsDir, resolve(dirname(file), spec)).split(/[\\/]/);
      if (target.length >= 2 && target[0] !== '..' && target[0] !== 'shared' && target[0] !== own[0])
        violations.push(`${relative(repoRoot, file)} imports ${target.join('/')}`);
    }
  }
  assert.deepEqual(violations, []);
});
