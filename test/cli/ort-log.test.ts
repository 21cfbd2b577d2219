import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const require = createRequire(import.meta.url);
const ortBin = join(dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
const cudaInstalled = existsSync(ortBin) && readdirSync(ortBin).some((f) => f.includes('providers_cuda'));

test(
  'a CUDA failure prints our message only, without onnxruntime log lines before it (E4E_ORT_LOG shows them)',
  { skip: cudaInstalled ? 'the CUDA provider is installed here: --device cuda may work' : false },
  () => {
    const root = mkdtempSync(join(tmpdir(), 'e4e-ort-log-'));
    try {
      const argv = [
        join(repoRoot, 'bin', 'eye4eye.js'),
        'transfer',
        ...['--structure', join(repoRoot, 'examples', 'bird-blue.png'), '--appearance', join(repoRoot, 'examples', 'bird-red.png'), '--domain', 'bird'],
        ...['--model', sd1TinyModelDir, '--size', '64', '--steps', '2', '--device', 'cuda', '--out', join(root, 'out')],
      ];
      const run = (extraEnv: Record<string, string>) =>
        spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, E4E_CACHE_DIR: join(root, 'cache'), ...extraEnv }, timeout: 120_000 });
      const quiet = run({});
      assert.equal(quiet.status, 1, quiet.stderr);
      const lines = quiet.stderr.trimEnd().split('\n');
      assert.deepEqual(
        lines.filter((l) => !l.startsWith('eye4eye: ')).slice(0, 1),
        [lines.find((l) => l.startsWith('eye4eye transfer: RuntimeError [E_RUNTIME]: '))],
        quiet.stderr,
      );
      assert.doesNotMatch(quiet.stderr, /onnxruntime:/);
      assert.ok(!quiet.stderr.includes(String.fromCharCode(27)), 'no terminal colour codes (onnxruntime colours its log lines)');
      assert.match(quiet.stderr, /\n {2}hint: CUDA needs onnxruntime-node's CUDA 12 binaries.*\(E4E_ORT_LOG=error shows onnxruntime's own log lines\)\n$/);
      assert.equal(existsSync(join(root, 'out')), false);
      const verbose = run({ E4E_ORT_LOG: 'error' });
      assert.equal(verbose.status, 1);
      assert.match(verbose.stderr, /\[E:onnxruntime:/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
