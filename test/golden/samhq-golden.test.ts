/**
 * The samhq-tiny golden case (copied from shared/golden into test/fixtures): every `samhq.*` tensor the case does not
 * mark as an input, from the decoded PNGs through the exact resamplers, the image encoder, the prompt encoder, the HQ
 * decoder and postprocess_masks, within io.json's tolerances (masks exact but for io.json's fragile pixels).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCompare } from '../../src/golden/compare.js';
import { loadGoldenCase } from '../../src/golden/golden-case.js';
import { runGolden } from '../../src/golden/runner.js';
import { fixturesDir } from '../helpers/paths.js';

const caseDir = join(fixturesDir, 'golden', 'samhq-tiny');
const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-samhq-golden-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

test('samhq-tiny: every samhq tensor within the case tolerances', async () => {
  const golden = loadGoldenCase(caseDir);
  const compared = golden.names().filter((n) => n.startsWith('samhq.') && golden.tensors[n]?.role !== 'input');
  golden.close();
  const report = await runGolden(caseDir, { cacheDir });
  assert.deepEqual(
    report.groups.map((g) => g.group),
    ['samhq'],
  );
  const group = report.groups[0]!;
  assert.equal(group.error, undefined, group.error);
  const failing = group.comparisons.filter((c) => !c.ok).map(formatCompare);
  assert.deepEqual(failing, []);
  assert.equal(group.comparisons.length, compared.length);
  // The stages run.py makes are all there: uint8 images exact, masks of every prompt.
  for (const stage of ['resized', 'model_input_uint8', 'model_input', 'image_embeddings', 'interm_embeddings']) {
    assert.ok(
      group.comparisons.some((c) => c.label === `samhq.image0.${stage}` && c.ok && c.maxAbs <= (stage.endsWith('uint8') || stage === 'resized' ? 0 : 1e-4)),
    );
  }
  assert.equal(group.comparisons.filter((c) => c.label.endsWith('.masks')).length, 20);
  assert.ok(report.ok);
});
