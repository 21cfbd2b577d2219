/**
 * The queue's parts that need no Redis: redis:// URLs, job data round trip (the inputs' content travels; the
 * worker's batch-level options apply; bad job data is refused by name) and the run folder lock takeover a worker
 * uses for a job another machine lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBatchFile } from '../../src/batch/batch-file.js';
import { parseRows } from '../../src/batch/batch-rows.js';
import { LOCK_NAME, RunFolder } from '../../src/cli/run-folder.js';
import { materializeRow, redisConnection, rowJobData, rowJobId, safeName } from '../../src/queue/jobs.js';
import { runSubmitCommand, runWorkerCommand } from '../../src/cli/queue-commands.js';
import { repoRoot } from '../helpers/paths.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-jobs-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('redis URLs become connection options; other URLs are refused naming --redis', () => {
  assert.deepEqual(redisConnection('redis://127.0.0.1:6399'), { host: '127.0.0.1', port: 6399, maxRetriesPerRequest: null });
  assert.deepEqual(redisConnection('redis://u:p%40ss@example.org/2'), {
    host: 'example.org',
    port: 6379,
    db: 2,
    username: 'u',
    password: 'p@ss',
    maxRetriesPerRequest: null,
  });
  assert.throws(() => redisConnection('http://x'), /--redis: expected a redis:\/\/HOST:PORT URL but received 'http:\/\/x'/);
  assert.throws(() => redisConnection('nonsense'), /--redis: expected a redis/);
  assert.throws(() => redisConnection('redis://h/x'), /the database of 'redis:\/\/h\/x' is not a number/);
  assert.equal(safeName('../my batch!'), 'my-batch-');
});

test('a row travels as job data with its files and comes back as the same transfer on the worker', () => {
  const file = join(root, 'b.csv');
  writeFileSync(
    file,
    `id,structure,appearance,domain,steps,structure-mask,feat-range\nr1,${join(repoRoot, 'examples', 'bird-blue.png')},${join(repoRoot, 'examples', 'bird-red.png')},bird,10,${join(repoRoot, 'examples', 'bird-blue-mask.png')},"1,5"\n`,
  );
  const { rows, problems } = parseRows(readBatchFile(file).rows, file, { batchOptions: {}, model: '' });
  assert.deepEqual(problems, []);
  const row = rows[0]!;
  const data = JSON.parse(JSON.stringify(rowJobData('b', row))) as ReturnType<typeof rowJobData>;
  assert.equal(data.structure.name, 'bird-blue.png');
  assert.deepEqual(Buffer.from(data.structure.base64, 'base64'), readFileSync(row.structure));
  assert.equal(rowJobId('b', row), `b.r1.${row.optionsHash.slice(0, 16)}`);
  const back = materializeRow(data, join(root, 'job'), { device: 'cpu' });
  assert.deepEqual(readFileSync(back.structure), readFileSync(row.structure));
  assert.deepEqual(readFileSync(back.options.structureMask as string), readFileSync(row.options.structureMask as string));
  assert.deepEqual({ ...back.options, structureMask: 'm' }, { ...row.options, structureMask: 'm' });
  assert.deepEqual(back.given, { featRange: true, adainRange: false });
  assert.throws(() => materializeRow({ ...data, id: '../x' }, join(root, 'job2'), {}), /job data: id "\.\.\/x" is not a safe folder name/);
  assert.throws(() => materializeRow({ ...data, options: { ...data.options, numSteps: -1 } }, join(root, 'job3'), {}), /numSteps/);
});

test("a run folder lock of another machine is kept, unless the claim takes it over (a worker holding the job's queue lock)", () => {
  const dir = join(root, 'locked');
  mkdirSync(dir);
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: 'then' }));
  assert.throws(() => RunFolder.claim(dir), /in use by another eye4eye run \(pid 1 on elsewhere, started then\)/);
  const seen: unknown[] = [];
  const folder = RunFolder.claim(dir, { takeOverLock: (h) => (seen.push(h), h.host !== undefined && h.host !== 'here') });
  assert.deepEqual(seen, [{ pid: 1, host: 'elsewhere' }]);
  assert.equal((JSON.parse(readFileSync(join(dir, LOCK_NAME), 'utf8')) as { pid: number }).pid, process.pid);
  folder.release();
});

test('worker and submit refuse bad command lines (exit 2) naming the flag', async () => {
  let err = '';
  const io = { out: () => undefined, err: (s: string) => void (err += s) };
  assert.equal(await runWorkerCommand([], io), 2);
  assert.match(err, /eye4eye worker: missing required option --redis URL/);
  assert.equal(await runWorkerCommand(['--redis', 'redis://h:1', '--lock-duration', '0'], io), 2);
  assert.match(err, /--lock-duration: expected a positive integer but received '0'/);
  assert.equal(await runSubmitCommand(['--redis', 'ftp://h'], io), 2);
  assert.match(err, /eye4eye submit: --redis: expected a redis/);
  assert.equal(await runSubmitCommand(['--redis', 'redis://h:1'], io), 2);
  assert.match(err, /eye4eye submit: missing the batch FILE/);
  // Nothing listens on port 1: a clear error, not a wait.
  writeFileSync(join(root, 'one.csv'), 'structure,appearance,domain\na.png,b.png,bird\n');
  assert.equal(await runSubmitCommand(['--redis', 'redis://127.0.0.1:1', join(root, 'one.csv')], io), 1);
  assert.match(err, /eye4eye submit: QueueError \[E_QUEUE\]: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED/);
  assert.equal(await runWorkerCommand(['--redis', 'redis://127.0.0.1:1'], io), 1);
  assert.match(err, /eye4eye worker: QueueError \[E_QUEUE\]: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
});
