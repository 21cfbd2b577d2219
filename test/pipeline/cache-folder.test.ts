import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ABANDONED_TEMP_MS, ModelCache, STALE_TEMP_MS } from '../../src/runtime/model-cache.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-cache-folder-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const DEAD_PID = 4_194_400;
const KEY = 'a'.repeat(24);

function aged(path: string, ms: number): string {
  const t = (Date.now() - ms) / 1000;
  utimesSync(path, t, t);
  return path;
}

test('opening the cache removes the temporary entries of killed runs, and only those', () => {
  const cacheDir = join(root, 'stale');
  const graphs = join(cacheDir, 'graphs');
  const inversions = join(cacheDir, 'inversions');
  mkdirSync(graphs, { recursive: true });
  mkdirSync(inversions, { recursive: true });
  const entry = (name: string): string => {
    mkdirSync(join(graphs, name));
    writeFileSync(join(graphs, name, 'unet.onnx'), 'x');
    return join(graphs, name);
  };
  aged(entry(`.tmp-unet_freeu_e4e-${KEY}-${DEAD_PID}-k1`), STALE_TEMP_MS + 60_000); // dead, old: removed
  aged(entry(`.tmp-vae_encoder-${KEY}-${DEAD_PID}-k2`), 60_000); // dead but recent: may still be another machine's build
  aged(entry(`.tmp-text_encoder-${KEY}-${process.pid}-k3`), STALE_TEMP_MS + 60_000); // a live process's build: kept
  aged(entry(`.tmp-vae_decoder-${KEY}-${process.pid}-k4`), ABANDONED_TEMP_MS + 60_000); // older than a day: removed
  aged(entry(`unet-${KEY}`), ABANDONED_TEMP_MS + 60_000); // a real entry: never touched
  const file = (name: string, ms: number): void => {
    writeFileSync(join(inversions, name), 'x');
    aged(join(inversions, name), ms);
  };
  file(`${'b'.repeat(64)}.safetensors.tmp-${DEAD_PID}-k5`, STALE_TEMP_MS + 60_000);
  file(`${'c'.repeat(64)}.safetensors`, ABANDONED_TEMP_MS + 60_000);

  const cache = new ModelCache(relative(process.cwd(), cacheDir));
  assert.equal(cache.root, cacheDir, 'the root is absolute');
  assert.equal(cache.writable, true);
  assert.deepEqual([...cache.removedStale].sort(), [
    join('graphs', `.tmp-unet_freeu_e4e-${KEY}-${DEAD_PID}-k1`),
    join('graphs', `.tmp-vae_decoder-${KEY}-${process.pid}-k4`),
    join('inversions', `${'b'.repeat(64)}.safetensors.tmp-${DEAD_PID}-k5`),
  ]);
  assert.deepEqual(readdirSync(graphs).sort(), [`.tmp-text_encoder-${KEY}-${process.pid}-k3`, `.tmp-vae_encoder-${KEY}-${DEAD_PID}-k2`, `unet-${KEY}`]);
  assert.deepEqual(readdirSync(inversions), [`${'c'.repeat(64)}.safetensors`]);
});

test('a cache folder that cannot be written is detected when opened, and left alone', () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  const cache = new ModelCache(file);
  assert.equal(cache.writable, false);
  assert.match(cache.notWritableReason ?? '', /^ENOTDIR: not a directory, mkdir '.*a-file\/graphs'$/);
  assert.deepEqual(cache.removedStale, []);
  cache.dispose();
  assert.equal(existsSync(join(file, 'graphs')), false);
});
