/**
 * /api/embed and /api/segment with the samhq-tiny SAM-HQ model given at server start: masks from a box and from
 * points (the library's SamSegmenter in its own worker thread), the prompt checks, and upload checks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import { fixturesDir } from '../helpers/paths.js';
import { b64, call, testServer, type TestServer } from './helpers.js';

let server: TestServer;

before(async () => {
  server = await testServer({ samModel: join(fixturesDir, 'golden', 'samhq-tiny', 'model') });
});

after(async () => {
  await server.cleanup();
});

const maskOf = async (dataUrl: string): Promise<{ width: number; height: number; on: number; values: Set<number> }> => {
  const { data, info } = await sharp(Buffer.from(dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64'))
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, on: data.filter((v) => v > 127).length, values: new Set(data) };
};

test('info says SAM is on; embed, then masks from a box and from points at the image size', async () => {
  assert.equal((await call(server, 'GET', '/api/info')).json.sam, true);
  const embed = await call(server, 'POST', '/api/embed', { image: b64('bird-blue.png') });
  assert.equal(embed.status, 200, embed.text);
  assert.deepEqual([embed.json.width, embed.json.height], [512, 512]);
  assert.equal(typeof embed.json.seconds, 'number');
  const box = await call(server, 'POST', '/api/segment', { image: b64('bird-blue.png'), box: [100, 100, 400, 400] });
  assert.equal(box.status, 200, box.text);
  assert.equal(typeof box.json.score, 'number');
  const m = await maskOf(box.json.mask);
  assert.deepEqual([m.width, m.height], [512, 512]);
  assert.ok(
    [...m.values].every((v) => v === 0 || v === 255),
    'a 0/255 mask',
  );
  assert.ok(m.on > 0 && m.on < 512 * 512, `some pixels selected, not all (${m.on})`);
  const points = await call(server, 'POST', '/api/segment', {
    image: b64('bird-blue.png'),
    points: [
      { x: 250, y: 250, label: 1 },
      { x: 10, y: 10, label: 0 },
    ],
  });
  assert.equal(points.status, 200, points.text);
  assert.notEqual(points.json.mask, box.json.mask, 'another prompt, another mask');
});

test('bad segment requests: prompt and image checked, clear JSON errors', async () => {
  const image = b64('bird-blue.png');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ image }, /^give a box or at least one point/],
    [{ image, box: [10, 10, 5, 50] }, /^box: expected \[x0, y0, x1, y1\] with x0 < x1/],
    [{ image, box: [0, 0, 600, 100] }, /^box: \[0, 0, 600, 100\] is outside the 512x512 image/],
    [{ image, box: 'all' }, /^box: expected/],
    [{ image, points: [{ x: 5, y: 5, label: 2 }] }, /^points: expected at most 64 \{x, y, label: 0\|1\} inside the 512x512 image/],
    [{ image, points: [{ x: 900, y: 5, label: 1 }] }, /^points: expected/],
    [{ image: Buffer.from('plain text').toString('base64'), box: [0, 0, 1, 1] }, /^image: not a PNG, JPEG or WebP image/],
    [{ image, box: [0, 0, 9, 9], mask: 'x' }, /^unknown field\(s\) mask/],
  ];
  for (const [body, message] of cases) {
    const r = await call(server, 'POST', '/api/segment', body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.match(r.json.error.message, message);
  }
});
