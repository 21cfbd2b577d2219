/** RunControls.onLatent: the result branch's latent after every transfer step; the last one decodes to the result. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipeline, type LatentEvent, type TransferPipeline } from '../../src/pipeline/pipeline.js';
import { repoRoot, sd1TinyModelDir } from '../helpers/paths.js';

const FAST = { domain: 'bird', size: 128, numSteps: 6, skip: 2, featRange: [1, 5] as const, adainRange: [2, 6] as const };

let cacheDir: string;
let pipeline: TransferPipeline;

before(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'e4e-latent-hook-'));
  pipeline = await loadPipeline(sd1TinyModelDir, { cacheDir });
});

after(async () => {
  await pipeline.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

test('onLatent: one [1, 4, h, w] latent per transfer step, each a copy, the last one the decoded result', async () => {
  const events: LatentEvent[] = [];
  const structure = join(repoRoot, 'examples', 'bird-blue.png');
  const appearance = join(repoRoot, 'examples', 'bird-red.png');
  const result = await pipeline.transfer({ structure, appearance }, FAST, { onLatent: (e) => events.push(e) });
  assert.deepEqual(
    events.map((e) => [e.step, e.total]),
    [
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ],
  );
  for (const e of events) assert.deepEqual(e.latent.dims, [1, 4, 16, 16]);
  assert.notDeepEqual(events[0]!.latent.data, events[3]!.latent.data, 'the latent changes from step to step (copies, not one buffer)');
  const decoded = await pipeline.model.decodeLatent(events[3]!.latent);
  assert.deepEqual(
    decoded.data.map((v) => Math.min(Math.max(v, -1), 1)),
    result.image.data,
  );
});
