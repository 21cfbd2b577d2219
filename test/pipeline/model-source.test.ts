import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileError, ModelNotFoundError } from '../../src/errors.js';
import { hfHubCacheDir, hfToken, obtainModelSource, resolveModelSource } from '../../src/pipeline/model-source.js';
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
    assert.throws(
      () => resolveModelSource('owner/absent', { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' }),
      (e: unknown) => {
        assert.ok(e instanceof ModelNotFoundError);
        assert.equal(e.code, 'E_MODEL_NOT_FOUND');
        assert.equal(
          e.message,
          `model 'owner/absent' is not in the Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be downloaded; looked at: ${join(hub, 'models--owner--absent', 'refs', 'main')}, ${join(hub, 'models--owner--absent', 'snapshots')}\n  hint: download it with \`huggingface-cli download owner/absent\` (set HF_HOME or HF_HUB_CACHE if your cache lives elsewhere), or unset HF_HUB_OFFLINE to let eye4eye download it, or pass --model DIR with a diffusers model folder`,
        );
        return true;
      },
    );
    // The synchronous lookup never downloads; it says what does.
    assert.throws(
      () => resolveModelSource('owner/absent', { HF_HUB_CACHE: hub }),
      /model 'owner\/absent' is not in the Hugging Face cache; looked at: .*\n  hint: loadPipeline \(and the eye4eye CLI\) download it when online/,
    );
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
});

test('a path that does not exist is a missing folder', () => {
  assert.throws(
    () => resolveModelSource('./no/such/model'),
    (e: unknown) => e instanceof FileError && /model folder not found/.test(e.message),
  );
});

test('offline, obtainModelSource names the id, the paths and the remedies without any request', async () => {
  const hub = mkdtempSync(join(tmpdir(), 'e4e-hub-'));
  let requests = 0;
  const spy: typeof fetch = () => {
    requests++;
    return Promise.reject(new Error('no request expected'));
  };
  try {
    await assert.rejects(obtainModelSource('owner/absent', { env: { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' }, fetch: spy }), (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.match(e.message, /^model 'owner\/absent' is not in the Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be downloaded; looked at: /);
      assert.ok(e.message.includes(join(hub, 'models--owner--absent', 'refs', 'main')));
      assert.match(e.message, /hint: download it with `huggingface-cli download owner\/absent`.*unset HF_HUB_OFFLINE.*--model DIR/);
      return true;
    });
    assert.equal(requests, 0);
    // A local folder and a missing path need no network either.
    assert.equal((await obtainModelSource(sd1TinyModelDir, { fetch: spy })).kind, 'folder');
    await assert.rejects(obtainModelSource('./no/such/model', { fetch: spy }), FileError);
    assert.equal(requests, 0);
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
});

test('online, a failed download is a ModelNotFoundError naming the id and the cause', async () => {
  const hub = mkdtempSync(join(tmpdir(), 'e4e-hub-'));
  const offline: typeof fetch = () => Promise.reject(new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND huggingface.co') }));
  try {
    await assert.rejects(
      obtainModelSource('owner/absent', { env: { HF_HUB_CACHE: hub, HF_HOME: hub }, fetch: offline }),
      (e: unknown) =>
        e instanceof ModelNotFoundError &&
        /^model 'owner\/absent' could not be downloaded from https:\/\/huggingface\.co: resolving revision 'main': fetch failed \(getaddrinfo ENOTFOUND huggingface\.co\)/.test(
          e.message,
        ),
    );
  } finally {
    rmSync(hub, { recursive: true, force: true });
  }
});

test('the token comes from HF_TOKEN, else the file huggingface-cli login writes', () => {
  const home = mkdtempSync(join(tmpdir(), 'e4e-hfhome-'));
  try {
    assert.equal(hfToken({ HF_TOKEN: ' hf_abc\n', HF_HOME: home }), 'hf_abc');
    assert.equal(hfToken({ HF_HOME: home }), undefined);
    writeFileSync(join(home, 'token'), 'hf_file\n');
    assert.equal(hfToken({ HF_HOME: home }), 'hf_file');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
