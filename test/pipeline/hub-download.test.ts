/**
 * Model downloads against a fake Hugging Face Hub on 127.0.0.1 (no internet): the endpoints @huggingface/hub calls
 * (model info, paginated tree listing, paths-info, resolve with probe / redirect to a "CDN"), serving the sd1-tiny
 * diffusers model plus files that must never be fetched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { AbortError, ModelNotFoundError } from '../../src/errors.js';
import { chooseDiffusersFiles, downloadDiffusersModel, type DownloadProgress } from '../../src/pipeline/hub-download.js';
import { obtainModelSource, obtainSamModel } from '../../src/pipeline/model-source.js';
import { loadPipeline } from '../../src/pipeline/pipeline.js';
import { samTinyModelDir, sd1TinyModelDir } from '../helpers/paths.js';

interface FakeFile {
  path: string;
  size: number;
  /** Absent: listed only (a huge file), a request for it is an error. */
  data?: Buffer;
}

interface FakeRepo {
  commit: string;
  files: FakeFile[];
  /** Token the repository requires (a gated model). */
  token?: string;
}

interface Logged {
  method: string;
  url: string;
  body: string;
}

const MAX_REQUESTS = 1000;
const LFS = /\.(safetensors|bin|ckpt)$/;

function filesUnder(dir: string, prefix = ''): FakeFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) return filesUnder(join(dir, e.name), path);
    const data = readFileSync(join(dir, e.name));
    return [{ path, size: data.length, data }];
  });
}

const gitOid = (data: Buffer): string => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const commitOf = (name: string): string => createHash('sha1').update(name).digest('hex');

class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly requests: Logged[] = [];
  /** path -> how its download fails: 'midway' (connection cut half way through the body) or an HTTP status. */
  readonly failures = new Map<string, 'midway' | number>();
  pageSize = 7;
  url = '';
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', body });
        if (this.requests.length > MAX_REQUESTS) return this.send(res, 429, { error: 'too many requests' });
        try {
          this.handle(req, res, body);
        } catch (e) {
          this.send(res, 500, { error: String(e) });
        }
      });
    });
    this.server.keepAliveTimeout = 100;
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server === undefined ? ok() : this.server.close(() => ok())));
  }

  /** Requests whose URL (or body) names `path`. */
  requested(path: string): Logged[] {
    return this.requests.filter((r) => decodeURIComponent(r.url).includes(path) || r.body.includes(path));
  }

  downloads(): Logged[] {
    return this.requests.filter((r) => r.url.includes('/resolve/') || r.url.includes('/paths-info/') || r.url.startsWith('/cdn/'));
  }

  private send(res: ServerResponse, status: number, json: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(json);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  private entry(file: FakeFile, repo: FakeRepo, expand: boolean): Record<string, unknown> {
    const data = file.data ?? Buffer.alloc(0);
    const e: Record<string, unknown> = { type: 'file', oid: gitOid(data), size: file.size, path: file.path };
    if (LFS.test(file.path)) e['lfs'] = { oid: file.data === undefined ? sha256(Buffer.from(file.path)) : sha256(data), size: file.size, pointerSize: 134 };
    if (expand) e['lastCommit'] = { id: commitOf(`${repo.commit}:${file.path}`), title: 'add', date: '2024-01-01T00:00:00.000Z' };
    return e;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', this.url);
    const path = decodeURIComponent(url.pathname);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)(?:\/(.*))?$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(path);
    const id = api?.[1] ?? resolve?.[1] ?? cdn?.[1];
    const repo = id === undefined ? undefined : this.repos.get(id);
    if (repo === undefined) return this.send(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    if (repo.token !== undefined && req.headers.authorization !== `Bearer ${repo.token}` && cdn === null) {
      return this.send(
        res,
        401,
        { error: 'Access to model is restricted. You must have access to it and be authenticated to access it.' },
        { 'x-error-code': 'GatedRepo' },
      );
    }
    const rev = api?.[3] ?? resolve?.[2];
    if (rev !== undefined && rev !== 'main' && rev !== repo.commit)
      return this.send(res, 404, { error: 'Revision not found' }, { 'x-error-code': 'RevisionNotFound' });
    if (api !== null && api[2] === 'revision')
      return this.send(res, 200, { _id: 'x', id, sha: repo.commit, private: false, lastModified: '2024-01-01T00:00:00.000Z' });
    if (api !== null && api[2] === 'tree') {
      const dirs = [...new Set(repo.files.flatMap((f) => (f.path.includes('/') ? [f.path.split('/')[0]!] : [])))].map((d) => ({
        type: 'directory',
        oid: gitOid(Buffer.from(d)),
        size: 0,
        path: d,
      }));
      const all = [...dirs, ...repo.files.map((f) => this.entry(f, repo, false))];
      const cursor = Number(url.searchParams.get('cursor') ?? '0');
      const page = all.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = {};
      if (cursor + this.pageSize < all.length) {
        const next = new URL(url);
        next.searchParams.set('cursor', String(cursor + this.pageSize));
        headers['link'] = `<${next.href}>; rel="next"`;
      }
      return this.send(res, 200, page, headers);
    }
    if (api !== null && api[2] === 'paths-info') {
      const { paths, expand } = JSON.parse(body) as { paths: string[]; expand: boolean };
      return this.send(
        res,
        200,
        repo.files.filter((f) => paths.includes(f.path)).map((f) => this.entry(f, repo, expand)),
      );
    }
    const filePath = resolve?.[3] ?? cdn?.[2];
    const file = repo.files.find((f) => f.path === filePath);
    if (file === undefined) return this.send(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
    if (file.data === undefined) return this.send(res, 500, { error: `${file.path} must never be requested` });
    const data = file.data;
    const etag = LFS.test(file.path) ? sha256(data) : gitOid(data);
    const common = { 'x-repo-commit': repo.commit, etag: `"${etag}"`, 'accept-ranges': 'bytes' };
    if (resolve !== null && LFS.test(file.path)) {
      // Large files are served by the CDN the Hub redirects to.
      res.writeHead(302, { ...common, 'x-linked-etag': `"${etag}"`, 'x-linked-size': String(data.length), location: `${this.url}/cdn/${id}/${file.path}` });
      return void res.end();
    }
    const range = req.headers.range;
    if (range === 'bytes=0-0') {
      res.writeHead(206, { ...common, 'content-type': 'application/octet-stream', 'content-range': `bytes 0-0/${data.length}`, 'content-length': '1' });
      return void res.end(data.subarray(0, 1));
    }
    const failure = this.failures.get(file.path);
    if (typeof failure === 'number') return this.send(res, failure, { error: 'Internal Error' });
    res.writeHead(200, { ...common, 'content-type': 'application/octet-stream', 'content-length': String(data.length) });
    if (failure === 'midway') {
      res.write(data.subarray(0, Math.floor(data.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(data);
  }
}

const tinyFiles = filesUnder(sd1TinyModelDir);
const unwanted: FakeFile[] = [
  { path: 'unet/diffusion_pytorch_model.bin', size: 1000, data: Buffer.alloc(1000, 1) },
  { path: 'unet/diffusion_pytorch_model.fp16.safetensors', size: 1000, data: Buffer.alloc(1000, 2) },
  { path: 'text_encoder/model.fp16.safetensors', size: 1000, data: Buffer.alloc(1000, 3) },
  { path: 'vae/diffusion_pytorch_model.safetensors.index.json', size: 2, data: Buffer.from('{}') },
  { path: 'v1-5-pruned.ckpt', size: 4_265_380_512 },
  { path: 'safety_checker/model.safetensors', size: 1000, data: Buffer.alloc(1000, 4) },
  { path: 'README.md', size: 5, data: Buffer.from('hello') },
];
const shardA = Buffer.alloc(3000, 7);
const shardB = Buffer.alloc(2000, 8);
const shardIndex = Buffer.from(
  JSON.stringify({
    metadata: { total_size: 5000 },
    weight_map: {
      a: 'diffusion_pytorch_model-00001-of-00002.safetensors',
      b: 'diffusion_pytorch_model-00002-of-00002.safetensors',
      c: 'diffusion_pytorch_model-00001-of-00002.safetensors',
    },
  }),
);
const shardedFiles: FakeFile[] = [
  ...tinyFiles.filter((f) => f.path !== 'unet/diffusion_pytorch_model.safetensors'),
  { path: 'unet/diffusion_pytorch_model.safetensors.index.json', size: shardIndex.length, data: shardIndex },
  { path: 'unet/diffusion_pytorch_model-00001-of-00002.safetensors', size: shardA.length, data: shardA },
  { path: 'unet/diffusion_pytorch_model-00002-of-00002.safetensors', size: shardB.length, data: shardB },
  { path: 'unet/diffusion_pytorch_model.fp16.safetensors', size: 1000, data: Buffer.alloc(1000, 2) },
];

const hub = new FakeHub();
let work: string;
let n = 0;
/** A fresh, empty hub cache folder. */
const freshCache = (): string => join(work, `hub-${++n}`);

function addRepo(id: string, files: FakeFile[], token?: string): string {
  const commit = commitOf(id);
  hub.repos.set(id, token === undefined ? { commit, files } : { commit, files, token });
  return commit;
}

/** Files under a snapshot folder (relative paths) with their bytes. */
function snapshotFiles(dir: string, prefix = ''): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) for (const [p, d] of snapshotFiles(join(dir, e.name), path)) found.set(p, d);
    else found.set(path, readFileSync(join(dir, e.name)));
  }
  return found;
}

function incompleteBlobs(cacheDir: string, id: string): string[] {
  const blobs = join(cacheDir, `models--${id.replace('/', '--')}`, 'blobs');
  return existsSync(blobs) ? readdirSync(blobs).filter((f) => f.endsWith('.incomplete')) : [];
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'e4e-hubdl-'));
  addRepo('owner/tiny', [...tinyFiles, ...unwanted]);
  addRepo('owner/sharded', shardedFiles);
  addRepo('owner/gated', tinyFiles, 'secret-token');
  addRepo('owner/sam-tiny', [
    ...filesUnder(samTinyModelDir).filter((f) => f.path !== 'sam_hq_tiny.pth'),
    { path: 'sam_hq_vit_l.pth', size: 2_000_000_000 },
    { path: 'README.md', size: 5, data: Buffer.from('hello') },
  ]);
  addRepo('owner/pickles', [...tinyFiles.filter((f) => f.path !== 'unet/diffusion_pytorch_model.safetensors'), unwanted[0]!]);
  await hub.start();
});

after(async () => {
  await hub.close();
  rmSync(work, { recursive: true, force: true });
});

test('the weights are chosen like findWeights: plain, then sharded, then fp16; never pickles', () => {
  const base = [
    'unet/config.json',
    'vae/config.json',
    'text_encoder/config.json',
    'tokenizer/tokenizer_config.json',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'scheduler/scheduler_config.json',
  ];
  const choice = chooseDiffusersFiles('o/m', [
    ...base,
    'model_index.json',
    'README.md',
    'unet/diffusion_pytorch_model.safetensors',
    'unet/diffusion_pytorch_model.fp16.safetensors',
    'unet/diffusion_pytorch_model.bin',
    'vae/diffusion_pytorch_model.safetensors.index.json',
    'vae/diffusion_pytorch_model.fp16.safetensors',
    'text_encoder/model.fp16.safetensors',
    'text_encoder/pytorch_model.bin',
  ]);
  assert.deepEqual(choice.shardIndexes, ['vae/diffusion_pytorch_model.safetensors.index.json']);
  assert.deepEqual(choice.files, ['model_index.json', ...base, 'unet/diffusion_pytorch_model.safetensors', 'text_encoder/model.fp16.safetensors']);
  assert.throws(
    () =>
      chooseDiffusersFiles('o/m', [
        ...base,
        'unet/diffusion_pytorch_model.safetensors',
        'vae/diffusion_pytorch_model.safetensors',
        'text_encoder/pytorch_model.bin',
      ]),
    (e: unknown) =>
      e instanceof ModelNotFoundError &&
      /model 'o\/m': component 'text_encoder' has only PyTorch pickle weights \(text_encoder\/pytorch_model\.bin\); eye4eye requires safetensors weights/.test(
        e.message,
      ),
  );
  assert.throws(
    () => chooseDiffusersFiles('o/m', ['v1-5-pruned.ckpt', 'README.md']),
    (e: unknown) =>
      e instanceof ModelNotFoundError && /not a diffusers model: missing unet\/config\.json.*top-level files: README\.md, v1-5-pruned\.ckpt/.test(e.message),
  );
});

test('download: only the files eye4eye needs, into blobs/ snapshots/<commit>/ refs/main, with progress', async () => {
  const cacheDir = freshCache();
  const commit = hub.repos.get('owner/tiny')!.commit;
  const start = hub.requests.length;
  const events: DownloadProgress[] = [];
  const snapshot = await downloadDiffusersModel('owner/tiny', { cacheDir, hubUrl: hub.url, onProgress: (p) => events.push(p) });
  const repoDir = join(cacheDir, 'models--owner--tiny');
  assert.equal(snapshot, join(repoDir, 'snapshots', commit));
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), commit);
  const got = snapshotFiles(snapshot);
  assert.deepEqual([...got.keys()].sort(), tinyFiles.map((f) => f.path).sort());
  for (const f of tinyFiles) assert.ok(got.get(f.path)!.equals(f.data!), f.path);
  // huggingface_hub's layout: snapshot entries are relative links to content-addressed blobs.
  assert.ok(lstatSync(join(snapshot, 'unet', 'config.json')).isSymbolicLink());
  assert.equal(readdirSync(join(repoDir, 'blobs')).length, tinyFiles.length);
  for (const f of unwanted) assert.deepEqual(hub.requested(f.path), [], `${f.path} was requested`);
  assert.ok(hub.requests.slice(start).filter((r) => r.url.includes('/tree/')).length > 1, 'the listing is paginated');

  const total = tinyFiles.reduce((s, f) => s + f.size, 0);
  assert.ok(events.length > tinyFiles.length);
  assert.ok(events.every((e) => e.totalBytes === total && e.files === tinyFiles.length));
  assert.deepEqual(
    [...new Set(events.map((e) => e.fileIndex))],
    tinyFiles.map((_, i) => i),
  );
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes, 'bytes never go back');
  assert.equal(events.at(-1)!.bytes, total);
  // Streamed bytes are reported while a big file comes in, not only when it is done.
  assert.ok(events.some((e) => e.file === 'text_encoder/model.safetensors' && e.bytes > events.find((x) => x.file === e.file)!.bytes && e.bytes < total));

  const before = hub.requests.length;
  const again: DownloadProgress[] = [];
  assert.equal(await downloadDiffusersModel('owner/tiny', { cacheDir, hubUrl: hub.url, onProgress: (p) => again.push(p) }), snapshot);
  assert.deepEqual(
    hub.downloads().filter((r) => hub.requests.indexOf(r) >= before),
    [],
    'a second call fetches no file',
  );
  assert.equal(again.at(-1)!.bytes, total);
});

test('download: a sharded weights index brings its shards, not the fp16 variant', async () => {
  const cacheDir = freshCache();
  const snapshot = await downloadDiffusersModel('owner/sharded', { cacheDir, hubUrl: hub.url });
  const got = snapshotFiles(snapshot);
  assert.ok(got.get('unet/diffusion_pytorch_model-00001-of-00002.safetensors')!.equals(shardA));
  assert.ok(got.get('unet/diffusion_pytorch_model-00002-of-00002.safetensors')!.equals(shardB));
  assert.ok(got.has('unet/diffusion_pytorch_model.safetensors.index.json'));
  assert.equal(got.has('unet/diffusion_pytorch_model.fp16.safetensors'), false);
  assert.deepEqual(hub.requested('fp16'), []);
});

test('download: an unknown repository, a gated one and no network are ModelNotFoundError naming the id and a remedy', async () => {
  const cacheDir = freshCache();
  await assert.rejects(downloadDiffusersModel('owner/absent', { cacheDir, hubUrl: hub.url }), (e: unknown) => {
    assert.ok(e instanceof ModelNotFoundError);
    assert.match(e.message, /^model 'owner\/absent' could not be downloaded from http:\/\/127\.0\.0\.1:\d+: resolving revision 'main': HTTP 404 \(not found\)/);
    assert.match(e.message, /hint: check the id .*HF_TOKEN.*huggingface-cli download owner\/absent.*--model DIR/);
    return true;
  });
  assert.equal(existsSync(join(cacheDir, 'models--owner--absent', 'snapshots')), false);

  await assert.rejects(
    downloadDiffusersModel('owner/gated', { cacheDir, hubUrl: hub.url }),
    /model 'owner\/gated' could not be downloaded .*HTTP 401 \(.*gated and needs a token\)/,
  );
  // The token goes along (huggingface_hub accepts tokens without the hf_ prefix, so do we).
  const snapshot = await downloadDiffusersModel('owner/gated', { cacheDir, hubUrl: hub.url, accessToken: 'secret-token' });
  assert.ok(existsSync(join(snapshot, 'unet', 'diffusion_pytorch_model.safetensors')));

  await assert.rejects(
    downloadDiffusersModel('owner/tiny', { cacheDir, hubUrl: 'http://127.0.0.1:1' }),
    (e: unknown) =>
      e instanceof ModelNotFoundError &&
      /model 'owner\/tiny' could not be downloaded from http:\/\/127\.0\.0\.1:1: resolving revision 'main': fetch failed/.test(e.message),
  );

  await assert.rejects(
    downloadDiffusersModel('owner/pickles', { cacheDir, hubUrl: hub.url }),
    /component 'unet' has only PyTorch pickle weights \(unet\/diffusion_pytorch_model\.bin\); eye4eye requires safetensors/,
  );
  assert.deepEqual(hub.requested('owner/pickles/resolve'), []);
});

test('download: a failure mid-file names the id and the file, leaves nothing partial, and a retry fetches only the rest', async () => {
  const cacheDir = freshCache();
  const id = 'owner/tiny';
  const failing = 'text_encoder/model.safetensors';
  const snapshot = join(cacheDir, 'models--owner--tiny', 'snapshots', hub.repos.get(id)!.commit);
  for (const failure of ['midway', 500] as const) {
    hub.failures.set(failing, failure);
    try {
      await assert.rejects(downloadDiffusersModel(id, { cacheDir, hubUrl: hub.url }), (e: unknown) => {
        assert.ok(e instanceof ModelNotFoundError, String(e));
        assert.match(e.message, new RegExp(`^model 'owner/tiny' could not be downloaded from ${hub.url}: file ${failing}: `));
        return true;
      });
    } finally {
      hub.failures.delete(failing);
    }
    assert.equal(existsSync(join(snapshot, ...failing.split('/'))), false, `${failure}: no partial file in the snapshot`);
    assert.deepEqual(incompleteBlobs(cacheDir, id), []);
    assert.equal(existsSync(join(cacheDir, 'models--owner--tiny', 'refs', 'main')), false, 'refs/main only once complete');
    for (const [path, data] of snapshotFiles(snapshot)) assert.ok(data.equals(tinyFiles.find((f) => f.path === path)!.data!), path);
  }
  const had = snapshotFiles(snapshot).size;
  const start = hub.requests.length;
  await downloadDiffusersModel(id, { cacheDir, hubUrl: hub.url });
  const fetched = hub.requests
    .slice(start)
    .filter((r) => r.url.includes('/resolve/'))
    .map((r) => decodeURIComponent(r.url).replace(/^.*\/resolve\/[^/]+\//, ''));
  assert.equal(new Set(fetched).size, tinyFiles.length - had);
  assert.ok(fetched.includes(failing));
  assert.equal(snapshotFiles(snapshot).size, tinyFiles.length);
});

test('download: an abort stops it with AbortError and nothing partial', async () => {
  const cacheDir = freshCache();
  const controller = new AbortController();
  await assert.rejects(
    downloadDiffusersModel('owner/tiny', {
      cacheDir,
      hubUrl: hub.url,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'text_encoder/model.safetensors' && p.bytes > 0) controller.abort();
      },
    }),
    (e: unknown) => e instanceof AbortError,
  );
  const snapshot = join(cacheDir, 'models--owner--tiny', 'snapshots', hub.repos.get('owner/tiny')!.commit);
  assert.equal(existsSync(join(snapshot, 'text_encoder', 'model.safetensors')), false);
  assert.deepEqual(incompleteBlobs(cacheDir, 'owner/tiny'), []);
});

test('obtainModelSource downloads a model missing from the cache once, then takes it from the cache without a request', async () => {
  const hubCache = freshCache();
  const env = { HF_HUB_CACHE: hubCache, HF_HOME: join(work, 'hf-home'), HF_ENDPOINT: hub.url };
  const start = hub.requests.length;
  const events: DownloadProgress[] = [];
  const source = await obtainModelSource('owner/tiny', { env, onDownload: (p) => events.push(p) });
  const commit = hub.repos.get('owner/tiny')!.commit;
  assert.deepEqual(source, { id: 'owner/tiny', path: join(hubCache, 'models--owner--tiny', 'snapshots', commit), kind: 'hf-cache', revision: commit });
  assert.equal(events.at(-1)!.bytes, events.at(-1)!.totalBytes);
  assert.ok(hub.requests.length > start);

  const mid = hub.requests.length;
  assert.deepEqual(await obtainModelSource('owner/tiny', { env, onDownload: () => assert.fail('no download') }), source);
  assert.equal(hub.requests.length, mid, 'the cached model needs no request');

  // Offline, a cached model is used as it is; a missing file is named, without any request.
  assert.deepEqual(await obtainModelSource('owner/tiny', { env: { ...env, HF_HUB_OFFLINE: '1' } }), source);
  const vaeWeights = join(source.path, 'vae', 'diffusion_pytorch_model.safetensors');
  rmSync(realpathSync(vaeWeights));
  rmSync(vaeWeights);
  await assert.rejects(
    obtainModelSource('owner/tiny', { env: { ...env, HF_HUB_OFFLINE: '1' } }),
    (e: unknown) =>
      e instanceof ModelNotFoundError &&
      e.message.startsWith(`model 'owner/tiny' is incomplete in the Hugging Face cache (${source.path}) and HF_HUB_OFFLINE is set`) &&
      /vae.*no weights found/.test(e.message) &&
      /unset HF_HUB_OFFLINE/.test(e.message),
  );
  assert.equal(hub.requests.length, mid);
  await assert.rejects(
    obtainModelSource('owner/other', { env: { ...env, HF_HUB_OFFLINE: 'true' } }),
    /model 'owner\/other' is not in the Hugging Face cache and HF_HUB_OFFLINE is set/,
  );
  assert.equal(hub.requests.length, mid, 'offline: no request at all');

  // Online, the missing file is fetched again (and only it).
  await obtainModelSource('owner/tiny', { env });
  const fetched = hub.requests.slice(mid).filter((r) => r.url.includes('/resolve/'));
  assert.ok(fetched.length > 0 && fetched.every((r) => r.url.includes('vae/diffusion_pytorch_model.safetensors')));
  assert.ok(readFileSync(vaeWeights).equals(tinyFiles.find((f) => f.path === 'vae/diffusion_pytorch_model.safetensors')!.data!));
});

test('loadPipeline opens a hub id after downloading it', async () => {
  const hubCache = freshCache();
  const graphCache = join(work, 'graphs');
  const events: DownloadProgress[] = [];
  const pipeline = await loadPipeline('owner/tiny', {
    cacheDir: graphCache,
    env: { HF_HUB_CACHE: hubCache, HF_HOME: join(work, 'hf-home'), HF_ENDPOINT: hub.url },
    onDownload: (p) => events.push(p),
  });
  try {
    assert.equal(pipeline.source.kind, 'hf-cache');
    assert.equal(relative(hubCache, pipeline.source.path), join('models--owner--tiny', 'snapshots', hub.repos.get('owner/tiny')!.commit));
    assert.ok(pipeline.sizeMultiple > 0);
    assert.equal(events.at(-1)!.bytes, events.at(-1)!.totalBytes);
  } finally {
    await pipeline.dispose();
  }
});

test('obtainSamModel downloads config.json and model.safetensors of a SamHQModel repository (nothing else), then uses the cache', async () => {
  const hubCache = freshCache();
  const env = { HF_HUB_CACHE: hubCache, HF_HOME: join(work, 'hf-home'), HF_ENDPOINT: hub.url };
  const source = await obtainSamModel('owner/sam-tiny', { env });
  const commit = hub.repos.get('owner/sam-tiny')!.commit;
  assert.deepEqual(source, { id: 'owner/sam-tiny', path: join(hubCache, 'models--owner--sam-tiny', 'snapshots', commit), kind: 'hf-cache', revision: commit });
  assert.deepEqual([...snapshotFiles(source.path).keys()].sort(), ['config.json', 'model.safetensors']);
  assert.ok(readFileSync(join(source.path, 'model.safetensors')).equals(readFileSync(join(samTinyModelDir, 'model.safetensors'))));
  assert.deepEqual(hub.requested('sam_hq_vit_l.pth'), []);
  const mid = hub.requests.length;
  assert.deepEqual(await obtainSamModel('owner/sam-tiny', { env }), source);
  assert.equal(hub.requests.length, mid, 'the cached model needs no request');
  // Offline and not cached: the error names the id; a repository that is no SamHQModel is refused by name.
  await assert.rejects(
    obtainSamModel('owner/sam-other', { env: { ...env, HF_HUB_OFFLINE: '1' } }),
    /SAM-HQ model 'owner\/sam-other' is not in the Hugging Face cache \(HF_HUB_OFFLINE is set\)/,
  );
  await assert.rejects(
    obtainSamModel('owner/tiny', { env: { ...env, HF_HUB_CACHE: freshCache() } }),
    (e: unknown) =>
      e instanceof ModelNotFoundError && /^model 'owner\/tiny': not a SamHQModel repository: missing config.json, model.safetensors/.test(e.message),
  );
});
