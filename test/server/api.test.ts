/**
 * The HTTP API of `eye4eye serve` on the tiny model: info and static files, option checks with the library's
 * messages, a job followed over SSE to its files, the queue and cancelling, and every bad request answered with a
 * clear JSON error and no files left behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { b64, call, FAST, readEvents, testServer, type TestServer } from './helpers.js';

let server: TestServer;
const limits = { maxBytes: 64 * 1024, maxSide: 1024 };
const job = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  structure: b64('bird-blue.png'),
  appearance: b64('bird-red.png'),
  options: FAST,
  ...extra,
});
const png = async (width: number, height: number, channels: 1 | 3, fill: (i: number) => number): Promise<string> =>
  (
    await sharp(Buffer.from(Array.from({ length: width * height * channels }, (_, i) => fill(i))), { raw: { width, height, channels } })
      .png()
      .toBuffer()
  ).toString('base64');

before(async () => {
  server = await testServer({ limits });
});

after(async () => {
  await server.cleanup();
});

test('info: the model, the form fields from the option table (no server-fixed options), no SAM', async () => {
  const r = await call(server, 'GET', '/api/info');
  assert.equal(r.status, 200);
  assert.equal(r.json.sam, false);
  assert.equal(r.json.sizeMultiple, 64);
  assert.match(String(r.json.model.path), /sd1-tiny[\\/]model$/);
  const flags = r.json.fields.map((f: { flag: string }) => f.flag);
  for (const f of ['domain', 'steps', 'skip', 'guidance', 'feat-range', 'adain-range', 'seed', 'size', 'v-injection']) assert.ok(flags.includes(f), f);
  for (const f of ['device', 'precision', 'cache-dir', 'structure-mask', 'appearance-mask']) assert.ok(!flags.includes(f), f);
  assert.deepEqual(
    r.json.fields.find((f: { flag: string }) => f.flag === 'steps'),
    {
      key: 'numSteps',
      flag: 'steps',
      type: 'string',
      valueName: 'N',
      description: 'DDIM steps of inversion and transfer (default 100)',
      default: '100',
      choices: null,
      required: false,
    },
  );
});

test('static files: the page and its script with security headers; nothing else of the package', async () => {
  const page = await call(server, 'GET', '/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.match(page.text, /<script type="module" src="\/app.js">/);
  const app = await call(server, 'GET', '/app.js');
  assert.equal(app.status, 200);
  assert.match(String(app.headers['content-type']), /^text\/javascript/);
  for (const path of ['/../package.json', '/%2e%2e/package.json', '/dist/src/index.js', '/package.json', '/..%2f..%2fetc%2fpasswd']) {
    const r = await call(server, 'GET', path);
    assert.equal(r.status, 404, path);
    assert.equal(r.json.error.code, 'E_NOT_FOUND', path);
  }
});

test('origins: the page opens from a link on another site, the API answers only its own origin, every request its own host', async () => {
  assert.equal((await call(server, 'GET', '/', undefined, { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' })).status, 200);
  const api = await call(server, 'GET', '/api/runs', undefined, { 'Sec-Fetch-Site': 'cross-site' });
  assert.equal(api.status, 403);
  assert.match(api.json.error.message, /cross-site request \(Sec-Fetch-Site: cross-site\) refused/);
  assert.equal((await call(server, 'GET', '/api/runs', undefined, { 'Sec-Fetch-Site': 'same-site' })).status, 403, 'another port of localhost');
  assert.equal((await call(server, 'GET', '/api/runs', undefined, { 'Sec-Fetch-Site': 'same-origin' })).status, 200);
  assert.equal((await call(server, 'GET', '/api/runs', undefined, { Host: `localhost:${server.port}` })).status, 200);
  const rebound = await call(server, 'GET', '/', undefined, { Host: `attacker.example:${server.port}` });
  assert.equal(rebound.status, 403);
  assert.equal(rebound.json.error.code, 'E_HOST');
});

test('a chunked body over the limit is answered 413 (not a reset connection)', async () => {
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/api/jobs',
        headers: { Host: `127.0.0.1:${server.port}`, 'Content-Type': 'application/json' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    const chunk = 'A'.repeat(64 * 1024);
    for (let i = 0; i < 12; i++) req.write(chunk);
    req.end();
  });
  assert.equal(status, 413);
});

test('options: the form parsed and validated by the library, with its messages and the field named', async () => {
  const ok = await call(server, 'POST', '/api/options', { form: { domain: 'bird', steps: '6', skip: '2', 'feat-range': '1,5', 'v-injection': false } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.options.numSteps, 6);
  assert.deepEqual(ok.json.options.featRange, [1, 5]);
  assert.equal(ok.json.options.prompt, 'A photo of a bird');
  assert.equal(ok.json.options.device, undefined, 'server-fixed options are not part of a request');
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ domain: 'bird', steps: 'abc' }, 'steps', /^--steps: expected a number but received 'abc'$/],
    [{ domain: 'bird', steps: '0' }, 'steps', /^Expected integer between 1 and 1000 for numSteps but received 0/],
    [{ domain: 'bird', 'feat-range': '5' }, 'feat-range', /^--feat-range: expected START,END/],
    [{ domain: '' }, 'domain', /^Expected non-empty string for domain/],
    [{ domain: 'bird', size: '100' }, 'size', /^Expected multiple of 64 between 64 and 2048 for size but received 100/],
    [{ domain: 'bird', device: 'cuda' }, 'device', /^unknown field 'device'/],
  ];
  for (const [form, flag, message] of cases) {
    const r = await call(server, 'POST', '/api/options', { form });
    assert.equal(r.status, 400, JSON.stringify(form));
    assert.match(r.json.error.message, message);
    assert.equal(r.json.error.flag, flag);
  }
});

test('bad requests: clear JSON errors, nothing queued, nothing written', async () => {
  const big = await png(160, 160, 3, () => Math.floor(Math.random() * 256));
  const wide = await png(1100, 4, 3, () => 100);
  const black = await png(64, 64, 1, () => 0);
  const wideMask = await png(64, 32, 1, () => 255);
  const truncated = Buffer.from(b64('bird-blue.png'), 'base64').subarray(0, 200).toString('base64');
  const port = server.port;
  const cases: { name: string; headers?: Record<string, string>; body: unknown; status: number; message: RegExp }[] = [
    {
      name: 'not JSON',
      headers: { 'Content-Type': 'text/plain' },
      body: 'hello',
      status: 415,
      message: /expected Content-Type application\/json but received 'text\/plain'/,
    },
    { name: 'form post', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1', status: 415, message: /application\/json/ },
    { name: 'broken JSON', body: '{"structure":', status: 400, message: /request body is not valid JSON/ },
    { name: 'JSON array', body: '[1]', status: 400, message: /must be a JSON object/ },
    {
      name: 'other origin',
      headers: { Origin: 'http://evil.example' },
      body: job(),
      status: 403,
      message: /cross-origin request from 'http:\/\/evil.example' refused/,
    },
    {
      name: 'cross site',
      headers: { 'Sec-Fetch-Site': 'cross-site' },
      body: job(),
      status: 403,
      message: /cross-site request \(Sec-Fetch-Site: cross-site\) refused/,
    },
    { name: 'rebinding', headers: { Host: `evil.example:${port}` }, body: job(), status: 403, message: /Host 'evil.example:\d+' is not this server/ },
    { name: 'unknown field', body: job({ model: '/etc' }), status: 400, message: /unknown field\(s\) 'model'/ },
    {
      name: 'device per request',
      body: job({ options: { ...FAST, device: 'webgpu' } }),
      status: 400,
      message: /option 'device' is set when the server starts/,
    },
    {
      name: 'mask path',
      body: job({ options: { ...FAST, structureMask: '/etc/passwd' } }),
      status: 400,
      message: /option 'structureMask' is set when the server starts/,
    },
    { name: 'no domain', body: job({ options: { size: 128 } }), status: 400, message: /^Expected non-empty string for domain/ },
    { name: 'unknown option', body: job({ options: { ...FAST, stepz: 3 } }), status: 400, message: /^Unknown option 'stepz'/ },
    { name: 'no structure', body: job({ structure: undefined }), status: 400, message: /^structure: expected a base64-encoded image/ },
    { name: 'not base64', body: job({ structure: 'not base64!' }), status: 400, message: /^structure: not valid base64/ },
    {
      name: 'text file',
      body: job({ appearance: Buffer.from('GIF89a, or rather: some text').toString('base64') }),
      status: 400,
      message: /^appearance: not a PNG, JPEG or WebP image \(checked by its first bytes\)/,
    },
    { name: 'truncated', body: job({ structure: truncated }), status: 400, message: /^structure: PNG image that cannot be decoded/ },
    { name: 'too many bytes', body: job({ structure: big }), status: 400, message: /^structure: image larger than the limit of 65536 bytes/ },
    {
      name: 'too many pixels',
      body: job({ structure: wide }),
      status: 400,
      message: /^structure: image of 1100x4 pixels is larger than the limit of 1024 pixels per side/,
    },
    { name: 'empty mask', body: job({ structureMask: black }), status: 400, message: /^structureMask: the mask selects no pixel/ },
    {
      name: 'mask of another aspect',
      body: job({ appearanceMask: wideMask }),
      status: 400,
      message: /the appearance mask is 64x32 but the appearance image .* is 512x512; a mask must have its image's aspect ratio/,
    },
    { name: 'huge body', body: JSON.stringify({ structure: 'A'.repeat(700_000) }), status: 413, message: /larger than the limit of \d+ bytes/ },
  ];
  for (const c of cases) {
    const r = await call(server, 'POST', '/api/jobs', c.body, c.headers);
    assert.equal(r.status, c.status, `${c.name}: ${r.text}`);
    assert.match(String(r.headers['content-type']), /^application\/json/, c.name);
    assert.equal(r.json.error.status, c.status, c.name);
    assert.match(r.json.error.message, c.message, c.name);
  }
  assert.deepEqual((await call(server, 'GET', '/api/jobs')).json.jobs, []);
  assert.equal(existsSync(server.outDir) ? readdirSync(server.outDir).length : 0, 0, 'no job files');
});

test('routes: unknown paths, wrong methods, unknown jobs, segment without a SAM model', async () => {
  assert.equal((await call(server, 'GET', '/api/nothing')).status, 404);
  const wrong = await call(server, 'DELETE', '/api/jobs');
  assert.equal(wrong.status, 405);
  assert.match(wrong.json.error.message, /DELETE \/api\/jobs: no such API route/);
  const missing = await call(server, 'GET', '/api/jobs/20260101-000000-abcdef');
  assert.equal(missing.status, 404);
  assert.match(missing.json.error.message, /^no job 20260101-000000-abcdef/);
  const sam = await call(server, 'POST', '/api/segment', { image: b64('bird-blue.png'), box: [10, 10, 100, 100] });
  assert.equal(sam.status, 501);
  assert.equal(sam.json.error.code, 'E_NO_SAM_MODEL');
  assert.match(sam.json.error.message, /^no --sam-model given/);
});

test('a job: queued, progress over SSE with previews, done; its files as a CLI run writes them, plus matches.json', async () => {
  const created = await call(server, 'POST', '/api/jobs', job({ structureMask: b64('bird-blue-mask.png') }));
  assert.equal(created.status, 202, created.text);
  const { id } = created.json.job;
  assert.match(id, /^\d{8}-\d{6}-[0-9a-f]{6}$/);
  assert.equal(created.json.events, `/api/jobs/${id}/events`);
  const events = await readEvents(server, id);
  const names = events.map((e) => e.event);
  assert.equal(names[0], 'queued');
  assert.equal(names.at(-1), 'done');
  assert.ok(names.includes('started'));
  // The first job of a fresh cache builds the graphs: the model's status lines come as events.
  assert.ok(
    events.some((e) => e.event === 'status' && /^(building|loading) unet/.test(e.data.message)),
    'status events',
  );
  const phases = [...new Set(events.filter((e) => e.event === 'progress').map((e) => e.data.phase))];
  assert.deepEqual(phases, ['inversion-app', 'inversion-struct', 'transfer', 'decode']);
  const transfer = events.filter((e) => e.event === 'progress' && e.data.phase === 'transfer');
  assert.deepEqual(
    transfer.map((e) => [e.data.step, e.data.total]),
    [
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ],
  );
  assert.ok(transfer.every((e) => typeof e.data.elapsedSeconds === 'number' && e.data.elapsedSeconds > 0));
  const done = events.at(-1)!.data;
  const expected = ['result.png', 'grid.png', 'structure.png', 'appearance.png', 'mask-structure.png', 'correspondence.png', 'matches.json', 'run.json'];
  assert.deepEqual(done.files, expected);
  assert.deepEqual(readdirSync(join(server.outDir, id)).sort(), [...expected].sort());

  const result = await fetch(`http://127.0.0.1:${server.port}/api/runs/${id}/files/result.png`);
  assert.equal(result.headers.get('content-type'), 'image/png');
  const meta = await sharp(Buffer.from(await result.arrayBuffer())).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 128]);
  const matches = (await call(server, 'GET', `/api/runs/${id}/files/matches.json`)).json;
  assert.equal(matches.site, 'up_blocks.3.attentions.2.transformer_blocks.0.attn1');
  assert.deepEqual([matches.width, matches.height, matches.indices.length], [16, 16, 256]);
  assert.ok(matches.indices.every((v: number) => Number.isInteger(v) && v < 256));
  const record = JSON.parse(readFileSync(join(server.outDir, id, 'run.json'), 'utf8'));
  assert.equal(record.command, 'serve');
  assert.equal(record.options.numSteps, 6);
  assert.equal(record.inputs.structureMask, 'mask-structure.png');
  assert.deepEqual(record.outputs, expected);
  const runs = (await call(server, 'GET', '/api/runs')).json.runs;
  assert.equal(runs[0].id, id);
  assert.equal(runs[0].hasMatches, true);
  assert.equal((await call(server, 'GET', `/api/jobs/${id}`)).json.job.status, 'done');
  // Late subscribers get the whole history; a finished job cannot be cancelled.
  const replay = await readEvents(server, id);
  assert.deepEqual(
    replay.map((e) => e.event),
    names.filter((n) => n !== 'preview'),
  );
  const cancel = await call(server, 'POST', `/api/jobs/${id}/cancel`, {});
  assert.equal(cancel.status, 409);
  assert.match(cancel.json.error.message, /has already finished \(done\)/);
});

test('previews: a latent preview image every few steps of the transfer', async () => {
  const created = await call(server, 'POST', '/api/jobs', job({ options: { ...FAST, seed: 3 } }));
  const events = await readEvents(server, created.json.job.id);
  const previews = events.filter((e) => e.event === 'preview');
  assert.ok(previews.length >= 1, 'at least one preview');
  for (const p of previews) {
    assert.deepEqual([p.data.width, p.data.height, p.data.total], [16, 16, 4]);
    const meta = await sharp(Buffer.from(String(p.data.image).replace(/^data:image\/png;base64,/, ''), 'base64')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 16, 16]);
  }
});

test('queue: one job at a time, a waiting job has its position and can be cancelled; a running job stops; no files for either', async () => {
  const first = (await call(server, 'POST', '/api/jobs', job({ options: { ...FAST, seed: 11 } }))).json.job;
  const second = (await call(server, 'POST', '/api/jobs', job({ options: { ...FAST, seed: 12 } }))).json.job;
  assert.equal(second.status, 'queued');
  assert.equal(second.position, first.status === 'running' ? 1 : 2);
  const listed = (await call(server, 'GET', '/api/jobs')).json.jobs.filter((j: { status: string }) => j.status === 'queued' || j.status === 'running');
  assert.deepEqual(
    listed.map((j: { id: string }) => j.id),
    [first.id, second.id],
  );
  const cancelled = await call(server, 'POST', `/api/jobs/${second.id}/cancel`, {});
  assert.equal(cancelled.json.job.status, 'cancelled');
  assert.deepEqual(
    (await readEvents(server, second.id)).map((e) => e.event),
    ['queued', 'cancelled'],
  );
  let asked = false;
  const events = await readEvents(server, first.id, (e) => {
    if (e.event === 'progress' && !asked) {
      asked = true;
      void call(server, 'POST', `/api/jobs/${first.id}/cancel`, {});
    }
  });
  assert.equal(events.at(-1)!.event, 'cancelled');
  assert.ok(events.filter((e) => e.event === 'progress').length < 10, 'stopped early');
  assert.ok(!existsSync(join(server.outDir, first.id)) && !existsSync(join(server.outDir, second.id)));
});

test('run files: names checked, nothing outside the output folder (no traversal, no symlinks out)', async () => {
  mkdirSync(join(server.outDir, 'evil'), { recursive: true });
  writeFileSync(join(server.outDir, 'secret.json'), '{}');
  symlinkSync('/etc/hostname', join(server.outDir, 'evil', 'host.json'));
  symlinkSync(join(server.outDir, 'secret.json'), join(server.outDir, 'evil', 'up.json'));
  const cases: [string, number, RegExp][] = [
    ['/api/runs/..%2F..%2Fetc/files/passwd.json', 400, /is not a run id/],
    ['/api/runs/evil/files/..%2Fsecret.json', 400, /is not a run file name/],
    ['/api/runs/evil/files/.hidden.json', 400, /is not a run file name/],
    ['/api/runs/evil/files/passwd', 400, /is not a run file name/],
    ['/api/runs/evil/files/host.json', 404, /run evil has no file host.json/],
    ['/api/runs/evil/files/missing.png', 404, /run evil has no file missing.png/],
  ];
  for (const [path, status, message] of cases) {
    const r = await call(server, 'GET', path);
    assert.equal(r.status, status, path);
    assert.match(r.json.error.message, message, path);
  }
  // A symlink to another file inside the output folder is still served (it is the user's own folder)...
  assert.equal((await call(server, 'GET', '/api/runs/evil/files/up.json')).status, 200);
  // ...and a folder without run.json is no past run.
  assert.ok(!(await call(server, 'GET', '/api/runs')).json.runs.some((r: { id: string }) => r.id === 'evil'));
});
