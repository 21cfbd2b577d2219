/** Run folders of the server: created per run (never an existing one), complete or absent, listed newest first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRuns, newRunId, writeRunFolder } from '../../src/server/run-store.js';

test('writeRunFolder: all files or none; an existing folder is refused; listRuns lists only folders with run.json', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'e4e-run-store-')), 'runs');
  try {
    const id = newRunId(new Date('2026-03-04T05:06:07.890Z'));
    assert.match(id, /^20260304-050607-[0-9a-f]{6}$/);
    const dir = writeRunFolder(out, id, [
      { name: 'run.json', data: Buffer.from('{"createdAt":"2026-03-04T05:06:07.890Z","options":{"domain":"cat"}}') },
      { name: 'result.png', data: Buffer.from('png') },
    ]);
    assert.deepEqual(readdirSync(dir).sort(), ['result.png', 'run.json']);
    assert.throws(() => writeRunFolder(out, id, [{ name: 'a.png', data: Buffer.from('x') }]), /cannot create the run folder \(EEXIST/);
    assert.equal(readFileSync(join(dir, 'result.png'), 'utf8'), 'png', 'the earlier run is untouched');
    // A file that cannot be written: nothing of the run is left.
    assert.throws(() => writeRunFolder(out, 'broken', [{ name: 'sub/x.png', data: Buffer.from('x') }]), /broken: cannot write the run's files/);
    assert.ok(!existsSync(join(out, 'broken')));
    assert.throws(() => writeRunFolder(out, '../up', []), /'..\/up' is not a run id/);
    mkdirSync(join(out, 'no-record'));
    writeFileSync(join(out, 'loose.json'), '{}');
    assert.deepEqual(listRuns(out), [{ id, createdAt: '2026-03-04T05:06:07.890Z', domain: 'cat', files: ['result.png', 'run.json'], hasMatches: false }]);
  } finally {
    rmSync(join(out, '..'), { recursive: true, force: true });
  }
});
