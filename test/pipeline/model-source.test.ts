import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileError, ModelNotFoundError } from '../../src/errors.js';
import { hfHubCacheDir, resolveModelSource } from '../../src/pipeline/model-source.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

test('hub cache folder follows huggingface_hub', () => {
  assert.equal(hfHubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' }), '/a');
  assert.equal(hfHubCacheDir({ HF_HOME: '/b' }), join('/b', 'hub'));
  assert.equal(hfHubCacheDir({ XDG_CACHE_HOME: '/c' }), join('/c', 'huggingface', 'hub'));
});

test('a local folder is used directly', () => {
  const s = resolveModelSource(sd1TinyModelDir);
  assert.equal(s.kind, 'folder');
  assert.equal(s.path, sd1TinyModelDir);
});

test('a hub id resolves through refs/main to its snapshot', () => {
  const hub = mkdtempSync(join(tmpdir(), 'e4e-hub-'));
  try {
    const repo = join(hub, 'models--owner--tiny');
    mkdirSync(join(repo, 'refs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', 'abc123'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), 'abc123\n');
    const s = resolveModelSource('owner/tiny', { HF_HUB_CACHE: hub });
    assert.deepEqual(s, { id: 'owner/tiny', path: join(repo, 'snapshots', 'abc123'), kind: 'hf-cache', revision: 'abc123' });
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
});

test('a hub id that is not cached names the id, the paths and the remedies', () => {
  const hub = mkdtempSync(join(tmpdir(), 'e4e-hub-'));
  try {
    assert.throws(() => resolveModelSource('owner/absent', { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' }), (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.equal(e.code, 'E_MODEL_NOT_FOUND');
      assert.equal(e.message, `model 'owner/absent' is not in the Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be downloaded; looked at: ${join(hub, 'models--owner--absent', 'refs', 'main')}, ${join(hub, 'models--owner--absent', 'snapshots')}\n  hint: download it with \`huggingface-cli download owner/absent\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or pass --model DIR with a diffusers model folder`);
      return true;
    });
    assert.throws(() => resolveModelSource('owner/absent', { HF_HUB_CACHE: hub }), /online download is not implemented/);
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
});

test('a path that does not exist is a missing folder', () => {
  assert.throws(() => resolveModelSource('./no/such/model'), (e: unknown) => e instanceof FileError && /model folder not found/.test(e.message));
});
