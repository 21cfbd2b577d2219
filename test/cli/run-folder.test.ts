import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileError } from '../../src/errors.js';
import { expectedOutputBytes, LOCK_NAME, RunFolder } from '../../src/cli/run-folder.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'e4e-run-folder-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A pid that runs nowhere here (above Linux's pid_max limit). */
const DEAD_PID = 4_194_400;

const files = (tag: string) => [
  { name: 'result.png', data: Buffer.from(`result ${tag}`) },
  { name: 'run.json', data: Buffer.from(JSON.stringify({ tool: 'eye4eye', outputs: ['result.png', 'run.json'] })) },
];

test('a new folder: created, locked while claimed, written with run.json last, unlocked', () => {
  const dir = join(root, 'a', 'b');
  const folder = RunFolder.claim(dir);
  assert.deepEqual(readdirSync(dir), [LOCK_NAME]);
  const lock = JSON.parse(readFileSync(join(dir, LOCK_NAME), 'utf8'));
  assert.deepEqual([lock.pid, lock.host], [process.pid, hostname()]);
  assert.deepEqual(folder.write(files('1')), [join(dir, 'result.png'), join(dir, 'run.json')]);
  assert.deepEqual(readdirSync(dir).sort(), ['result.png', 'run.json']);
});

test('released without writing: the folders this run created go, an existing folder stays', () => {
  const created = join(root, 'c', 'd');
  RunFolder.claim(created).release();
  assert.equal(existsSync(join(root, 'c')), false);
  const existing = join(root, 'existing');
  mkdirSync(existing);
  RunFolder.claim(existing).release();
  assert.deepEqual(readdirSync(existing), []);
});

test('a failed write removes what it wrote and keeps a folder it did not create', () => {
  const existing = join(root, 'existing-2');
  mkdirSync(existing);
  const folder = RunFolder.claim(existing);
  assert.throws(
    () =>
      folder.write([
        { name: 'result.png', data: Buffer.from('x') },
        { name: 'missing-sub/run.json', data: Buffer.from('y') },
      ]),
    (e: unknown) => e instanceof FileError && e.message.startsWith(`${existing}: cannot write the outputs (ENOENT`),
  );
  assert.deepEqual(readdirSync(existing), []);
});

test('free space is checked against the outputs', () => {
  const dir = join(root, 'small-disk');
  assert.throws(() => RunFolder.claim(dir, { expectedBytes: 5e6, freeBytes: () => 1e6 }), {
    message: `${dir}: 1.0 MB free, the outputs need about 5.0 MB\n  hint: free some space or give --out a folder on another disk`,
  });
  assert.equal(existsSync(dir), false);
  RunFolder.claim(dir, { expectedBytes: 5e6, freeBytes: () => 6e6 }).release();
  // 512 x 512 with two masks: a few megabytes at most.
  assert.ok(expectedOutputBytes(512, 512, 2) < 8e6 && expectedOutputBytes(512, 512, 2) > 5e6);
});

test('a lock left by a killed run is taken over, with its temporary files; the outputs it was renaming need --overwrite', () => {
  const dir = join(root, 'killed');
  mkdirSync(dir);
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: DEAD_PID, host: hostname(), startedAt: 'then', writing: ['result.png', 'run.json'] }));
  writeFileSync(join(dir, `.run.json.tmp-${DEAD_PID}-abc123`), 'half');
  writeFileSync(join(dir, 'result.png'), 'renamed before the kill');
  assert.throws(() => RunFolder.claim(dir), {
    message: `${dir}: the output folder holds an earlier run (result.png)\n  hint: pass --overwrite to replace that run, or give --out a new folder`,
  });
  // The refused claim cleaned the dead run's temporary file and lock, but kept its output.
  assert.deepEqual(readdirSync(dir), ['result.png']);
});

test('a lock of a live run (this process) refuses the folder', () => {
  const dir = join(root, 'busy');
  const first = RunFolder.claim(dir);
  assert.throws(
    () => RunFolder.claim(dir),
    (e: unknown) => e instanceof FileError && e.message.includes(`in use by another eye4eye run (pid ${process.pid}, started `),
  );
  first.write(files('busy'));
  assert.deepEqual(readdirSync(dir).sort(), ['result.png', 'run.json']);
});

test('--overwrite replaces an earlier run whole: its files this run does not write are removed, others are never touched', () => {
  const dir = join(root, 'earlier');
  mkdirSync(dir);
  writeFileSync(join(dir, 'mask-structure.png'), 'old mask');
  writeFileSync(join(dir, 'result.png'), 'old result');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ tool: 'eye4eye', outputs: ['result.png', 'mask-structure.png', 'run.json', '../escape.txt'] }));
  writeFileSync(join(root, 'escape.txt'), 'outside');
  RunFolder.claim(dir, { overwrite: true }).write(files('new'));
  assert.deepEqual(readdirSync(dir).sort(), ['result.png', 'run.json']);
  assert.equal(readFileSync(join(dir, 'result.png'), 'utf8'), 'result new');
  assert.equal(readFileSync(join(root, 'escape.txt'), 'utf8'), 'outside');
});
