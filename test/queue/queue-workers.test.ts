/**
 * The Redis queue with real workers (child processes running `eye4eye worker` on the tiny model) and a real Redis
 * at E4E_TEST_REDIS (e.g. redis://127.0.0.1:6399; .ci/run starts one). Skipped, with a message, when it is unset.
 * - a worker SIGKILLed in the middle of a job: the job stalls and the other worker finishes it; every row computed once;
 * - two workers at once with a poisoned job (an image that does not decode): it fails after its attempts, with its
 *   message, and the other rows are done, each once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { redisConnection } from '../../src/queue/jobs.js';
import { submitBatch } from '../../src/queue/submit.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const REDIS = process.env['E4E_TEST_REDIS'];
const skip = REDIS === undefined || REDIS === '' ? 'E4E_TEST_REDIS is not set (a redis:// URL of a Redis the tests may use; .ci/run starts one)' : false;
let root: string;
const children: ChildProcess[] = [];
const queues: string[] = [];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-queue-'));
  for (const f of ['bird-blue.png', 'bird-red.png', 'bird-blue-mask.png']) copyFileSync(join(repoRoot, 'examples', f), join(root, f));
  writeFileSync(join(root, 'poison.png'), Buffer.from('89504e470d0a1a0a0000garbage', 'hex'));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (REDIS !== undefined && REDIS !== '') {
    for (const name of queues) {
      const q = new Queue(name, { connection: redisConnection(REDIS) });
      await q.obliterate({ force: true });
      await q.close();
    }
  }
  rmSync(root, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcess;
  log: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
  stop: () => Promise<void>;
}

function worker(queue: string, out: string): Child {
  const proc = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin', 'eye4eye.js'),
      'worker',
      ...['--redis', REDIS!, '--queue', queue, '--out', out, '--model', sd1TinyModelDir, '--cache-dir', join(root, 'cache')],
      ...['--lock-duration', '4000', '--stalled-interval', '1000'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(proc);
  let text = '';
  const waiters: (() => void)[] = [];
  proc.stderr.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of [...waiters]) w();
  });
  proc.stdout.resume();
  return {
    proc,
    log: () => text,
    waitFor: (re, ms = 20000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(text);
          if (m !== null) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve(m);
          }
        };
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${text}`)), ms);
        waiters.push(check);
        check();
      }),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** Job ids each worker computed (its "computed in" lines). */
const computed = (log: string): string[] => [...log.matchAll(/job (\S+): computed in/g)].map((m) => m[1]!);

test('a worker killed mid-job: its job stalls and the other worker finishes it; every row is computed once', { skip, timeout: 60000 }, async () => {
  const queue = `e4e-test-${process.pid}-kill`;
  queues.push(queue);
  const out = join(root, 'out-kill');
  const file = join(root, 'kill.csv');
  writeFileSync(
    file,
    [
      'id,structure,appearance,domain,size,steps',
      'slow,bird-blue.png,bird-red.png,bird,128,40',
      'b,bird-red.png,bird-blue.png,bird,64,4',
      'c,bird-blue.png,bird-blue.png,bird,64,4',
    ].join('\n'),
  );
  const a = worker(queue, out);
  await a.waitFor(/waiting for jobs/);
  const following = submitBatch({ redis: REDIS!, queue, file, attempts: 2, pollMs: 200 });
  const mid = await a.waitFor(/job (kill\.slow\S*): transfer \d+\/27/);
  const killed = mid[1]!;
  a.proc.kill('SIGKILL');
  const b = worker(queue, out);
  const result = await following;
  await b.stop();
  assert.deepEqual(
    result.rows.map((r) => [r.id, r.status]),
    [
      ['slow', 'done'],
      ['b', 'done'],
      ['c', 'done'],
    ],
    b.log(),
  );
  const slow = result.rows[0]!;
  assert.equal(slow.jobId, killed);
  assert.equal(slow.result?.found, false);
  assert.notEqual(slow.result?.worker.split(':')[1], String(a.proc.pid), 'finished by the other worker');
  const all = [...computed(a.log()), ...computed(b.log())];
  assert.equal(all.length, 3, `${a.log()}\n${b.log()}`);
  assert.equal(new Set(all).size, 3, 'each job computed once');
  assert.ok(!computed(a.log()).includes(killed));
  for (const id of ['slow', 'b', 'c']) {
    const dir = join(out, 'kill', id);
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { batch: { id: string }; command: string };
    assert.equal(run.batch.id, id);
    assert.equal(run.command, 'worker');
    assert.deepEqual(
      readdirSync(dir).filter((e) => e.startsWith('.')),
      [],
      'no lock or temporary file left',
    );
  }
  // Submitting the same batch again adds nothing: it reports the jobs done.
  const again = await submitBatch({ redis: REDIS!, queue, file, pollMs: 100 });
  assert.deepEqual(
    again.rows.map((r) => r.status),
    ['done', 'done', 'done'],
  );
});

test('two workers: a poisoned job fails after its attempts with its message, the other rows are done once each', { skip, timeout: 60000 }, async () => {
  const queue = `e4e-test-${process.pid}-poison`;
  queues.push(queue);
  const out = join(root, 'out-poison');
  const file = join(root, 'poison.jsonl');
  const row = (id: string, structure: string, appearance: string, extra: object = {}): string =>
    JSON.stringify({ id, structure, appearance, domain: 'bird', size: 64, steps: 4, ...extra });
  writeFileSync(
    file,
    [
      row('p1', 'bird-blue.png', 'bird-red.png', { seed: 3 }),
      row('poisoned', 'poison.png', 'bird-red.png'),
      row('p2', 'bird-red.png', 'bird-blue.png', { seed: 3 }),
      row('p3', 'bird-blue.png', 'bird-red.png', { seed: 4, 'structure-mask': 'bird-blue-mask.png' }),
      row('bad-option', 'bird-blue.png', 'bird-red.png', { steps: 'many' }),
    ].join('\n'),
  );
  const w1 = worker(queue, out);
  const w2 = worker(queue, out);
  await Promise.all([w1.waitFor(/waiting for jobs/), w2.waitFor(/waiting for jobs/)]);
  const result = await submitBatch({ redis: REDIS!, queue, file, attempts: 2, pollMs: 200 });
  await Promise.all([w1.stop(), w2.stop()]);
  const by = new Map(result.rows.map((r) => [r.id, r]));
  for (const id of ['p1', 'p2', 'p3']) assert.equal(by.get(id)?.status, 'done', `${id}\n${w1.log()}\n${w2.log()}`);
  const poisoned = by.get('poisoned')!;
  assert.equal(poisoned.status, 'failed');
  assert.equal(poisoned.attempts, 2);
  assert.match(poisoned.error!, /row 2 \(poisoned\): ImageError .*structure-poison\.png/);
  assert.match(by.get('bad-option')!.error!, /row 5 \(line 5\): column 'steps': expected a number but received 'many'/);
  assert.equal(by.get('bad-option')!.jobId, undefined, 'a bad row is not enqueued');
  const all = [...computed(w1.log()), ...computed(w2.log())];
  assert.equal(all.length, 3, `${w1.log()}\n${w2.log()}`);
  assert.equal(new Set(all).size, 3);
  assert.equal([...`${w1.log()}${w2.log()}`.matchAll(/job \S*poisoned\S*: failed \(attempt/g)].length, 2, 'tried twice');
  assert.ok(existsSync(join(out, 'poison', 'p3', 'mask-structure.png')));
  assert.ok(!existsSync(join(out, 'poison', 'poisoned')), 'the failed row left no folder');
});
