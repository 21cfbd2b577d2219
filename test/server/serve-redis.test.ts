/**
 * `eye4eye serve --redis`: the server's jobs go to the BullMQ queue and an `eye4eye worker` (here in-process, on the
 * tiny model) runs them; progress and the end come back over SSE, and the files are read from the shared output
 * folder. Needs a Redis at E4E_TEST_REDIS (e.g. redis://127.0.0.1:6399; .ci/run starts one); skipped when unset.
 * The unreachable-Redis error needs no Redis.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import sharp from 'sharp';
import { runServeCommand } from '../../src/cli/serve-command.js';
import { loadPipeline } from '../../src/pipeline/pipeline.js';
import { redisConnection } from '../../src/queue/jobs.js';
import { startQueueWorker } from '../../src/queue/worker.js';
import { startServer } from '../../src/server/server.js';
import { sd1TinyModelDir } from '../helpers/paths.js';
import { b64, call, FAST, readEvents } from './helpers.js';

const REDIS = process.env['E4E_TEST_REDIS'];
const skip = REDIS === undefined || REDIS === '' ? 'E4E_TEST_REDIS is not set (a redis:// URL of a Redis the tests may use; .ci/run starts one)' : false;
const root = mkdtempSync(join(tmpdir(), 'e4e-serve-redis-'));
const queues: string[] = [];

after(async () => {
  if (REDIS !== undefined && REDIS !== '') {
    for (const name of queues) {
      const q = new Queue(name, { connection: redisConnection(REDIS) });
      await q.obliterate({ force: true });
      await q.close();
    }
  }
  rmSync(root, { recursive: true, force: true });
});

test(
  'serve --redis: a job goes to the queue, a queue worker runs it, progress and done come over SSE, result.png from the shared folder',
  { skip, timeout: 90000 },
  async () => {
    const queue = `e4e-test-${process.pid}-serve`;
    queues.push(queue);
    const out = join(root, 'out');
    const cache = join(root, 'cache');
    const server = await startServer({ model: sd1TinyModelDir, outDir: out, port: 0, redis: REDIS!, queue });
    const pipeline = await loadPipeline(sd1TinyModelDir, { cacheDir: cache, threads: 2 });
    const logs: string[] = [];
    const worker = startQueueWorker({ redis: REDIS!, queue, outDir: out, pipeline, batchOptions: { cacheDir: cache }, log: (l) => logs.push(l) });
    try {
      const info = await call(server, 'GET', '/api/info');
      assert.equal(info.status, 200);
      assert.equal(info.json.sizeMultiple, pipeline.sizeMultiple);
      const created = await call(server, 'POST', '/api/jobs', { structure: b64('bird-blue.png'), appearance: b64('bird-red.png'), options: FAST });
      assert.equal(created.status, 202, created.text);
      const id = created.json.job.id as string;
      const events = await readEvents(server, id);
      const names = events.map((e) => e.event);
      assert.equal(names[0], 'queued');
      assert.equal(names.at(-1), 'done', JSON.stringify(events.at(-1)));
      const progress = events.filter((e) => e.event === 'progress');
      assert.ok(progress.length > 0, names.join(' '));
      const last = progress.at(-1)!.data;
      assert.equal(typeof last.phase, 'string');
      assert.equal(last.step, last.total);
      assert.ok(
        logs.some((l) => l.includes(`job ${id}: computed`)),
        logs.join('\n'),
      );
      const files = events.at(-1)!.data.files as string[];
      assert.ok(files.includes('result.png'), files.join(', '));
      const summary = await call(server, 'GET', `/api/jobs/${id}`);
      assert.equal(summary.json.job.status, 'done');
      const png = await fetch(`http://127.0.0.1:${server.port}/api/runs/${id}/files/result.png`);
      assert.equal(png.status, 200);
      const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
      assert.equal(meta.width, FAST.size);
      const runs = await call(server, 'GET', '/api/runs');
      assert.ok(runs.json.runs.some((r: { id: string }) => r.id === id));
    } finally {
      await worker.close();
      await pipeline.dispose();
      await server.close();
    }
  },
);

test('serve --redis: a job waiting on the queue is cancelled (removed from the queue)', { skip, timeout: 30000 }, async () => {
  const queue = `e4e-test-${process.pid}-cancel`;
  queues.push(queue);
  const server = await startServer({ model: sd1TinyModelDir, outDir: join(root, 'out-cancel'), port: 0, redis: REDIS!, queue });
  try {
    const created = await call(server, 'POST', '/api/jobs', { structure: b64('bird-blue.png'), appearance: b64('bird-red.png'), options: FAST });
    assert.equal(created.status, 202, created.text);
    const id = created.json.job.id as string;
    const cancelled = await call(server, 'POST', `/api/jobs/${id}/cancel`, {});
    assert.equal(cancelled.status, 200, cancelled.text);
    const events = await readEvents(server, id);
    assert.equal(events.at(-1)!.event, 'cancelled', JSON.stringify(events));
    const q = new Queue(queue, { connection: redisConnection(REDIS!) });
    assert.equal(await q.getJob(id), undefined);
    await q.close();
  } finally {
    await server.close();
  }
});

test('serve --redis: a worker with another --out: the job fails with a message naming the shared folder', { skip, timeout: 60000 }, async () => {
  const queue = `e4e-test-${process.pid}-other-out`;
  queues.push(queue);
  const cache = join(root, 'cache');
  const server = await startServer({ model: sd1TinyModelDir, outDir: join(root, 'out-server'), port: 0, redis: REDIS!, queue });
  const pipeline = await loadPipeline(sd1TinyModelDir, { cacheDir: cache, threads: 2 });
  const worker = startQueueWorker({ redis: REDIS!, queue, outDir: join(root, 'out-worker'), pipeline, batchOptions: { cacheDir: cache } });
  try {
    const created = await call(server, 'POST', '/api/jobs', { structure: b64('bird-blue.png'), appearance: b64('bird-red.png'), options: FAST });
    const events = await readEvents(server, created.json.job.id as string);
    const end = events.at(-1)!;
    assert.equal(end.event, 'failed', JSON.stringify(end));
    assert.match(end.data.error.message, /serve --out must be the workers' --out/);
  } finally {
    await worker.close();
    await pipeline.dispose();
    await server.close();
  }
});

test('serve --redis with no Redis there: a clear error naming the URL, exit code 1', { timeout: 20000 }, async () => {
  let err = '';
  const code = await runServeCommand(['--redis', 'redis://127.0.0.1:1', '--model', sd1TinyModelDir, '--out', join(root, 'none'), '--port', '0'], {
    out: () => {},
    err: (s) => (err += s),
  });
  assert.equal(code, 1, err);
  assert.match(err, /QueueError \[E_QUEUE\]: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
});

test('serve: --queue without --redis is a usage error', async () => {
  let err = '';
  const code = await runServeCommand(['--queue', 'x'], { out: () => {}, err: (s) => (err += s) });
  assert.equal(code, 2);
  assert.match(err, /--queue needs --redis/);
});
