/** `eye4eye serve`: help, flag mistakes (exit 2, the flag named), and a start on the tiny model that prints the URL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { DEVICES, PRECISIONS } from '../../src/pipeline/options.js';
import { runServeCommand, SERVE_HELP } from '../../src/cli/serve-command.js';
import { sd1TinyModelDir } from '../helpers/paths.js';

async function serve(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runServeCommand(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('serve --help; listed in the main help', async () => {
  const r = await serve(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.out, `Usage:\n${SERVE_HELP}\n`);
  assert.match(r.out, /--sam-model PATH/);
  let out = '';
  await main(['--help'], (s) => (out += s));
  assert.match(out, /eye4eye serve \[--port N\] \[--host H\]/);
});

test('serve: flag mistakes exit 2 with the flag named', async () => {
  const cases: [string[], RegExp][] = [
    [['--port', 'abc'], /^eye4eye serve: --port: expected an integer between 0 and 65535 but received 'abc'/],
    [['--port', '70000'], /--port: expected an integer between 0 and 65535 but received '70000'/],
    [['--threads', '0'], /--threads: expected an integer between 1 and 1024/],
    [['--device', 'tpu'], new RegExp(`--device: expected one of ${DEVICES.join(', ')} but received 'tpu'`)],
    [['--precision', 'int8'], new RegExp(`--precision: expected one of ${PRECISIONS.join(', ')} but received 'int8'`)],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /unexpected argument 'extra'/],
  ];
  for (const [args, message] of cases) {
    const r = await serve(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, message, args.join(' '));
  }
});

test('serve: prints the URL, warns when bound beyond loopback, answers, stops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-serve-cmd-'));
  const stop = new AbortController();
  let out = '';
  let err = '';
  let announce: (url: string) => void = () => {};
  const announced = new Promise<string>((resolve) => (announce = resolve));
  try {
    const args = ['--model', sd1TinyModelDir, '--port', '0', '--host', '0.0.0.0', '--out', join(dir, 'runs'), '--cache-dir', join(dir, 'cache')];
    const running = runServeCommand(
      args,
      {
        out: (s) => {
          out += s;
          const url = /(http:\/\/\S+)/.exec(s)?.[1];
          if (url !== undefined) announce(url);
        },
        err: (s) => (err += s),
      },
      stop.signal,
    );
    const url = await Promise.race([announced, running.then((code) => Promise.reject(new Error(`serve exited ${code}: ${err}`)))]);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(err, /WARNING: binding 0\.0\.0\.0: anyone who can reach this address can run transfers/);
    const info = (await (await fetch(`${url}api/info`)).json()) as { model: { path: string } };
    assert.match(info.model.path, /sd1-tiny[\\/]model$/);
    stop.abort();
    assert.equal(await running, 0);
    assert.equal(out, `eye4eye serve: ${url}\n`);
  } finally {
    stop.abort();
    rmSync(dir, { recursive: true, force: true });
  }
});
