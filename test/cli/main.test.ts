import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { repoRoot } from '../helpers/paths.js';

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

async function capture(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(
    args,
    (s) => {
      out += s;
    },
    (s) => {
      err += s;
    },
  );
  return { code, out, err };
}

test('--version prints the package version', async () => {
  for (const flag of ['--version', '-v']) {
    const { code, out } = await capture([flag]);
    assert.equal(code, 0);
    assert.equal(out, `${version}\n`);
  }
});

test('--help lists the commands; no arguments prints help and exits 2', async () => {
  const help = await capture(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^eye4eye \d+\.\d+\.\d+ - Eye-for-an-eye appearance transfer/);
  assert.match(help.out, /eye4eye golden <case-dir>/);
  const none = await capture([]);
  assert.equal(none.code, 2);
});

test('the installed bin runs (bin/eye4eye.js -> dist)', () => {
  const result = spawnSync(process.execPath, [join(repoRoot, 'bin', 'eye4eye.js'), '--version'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, `${version}\n`);
});
