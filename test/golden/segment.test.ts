/**
 * The `segment` group of the cia-tiny golden (test/fixtures/golden/cia-tiny, model shared with sd1-tiny): every
 * KMeans stage, cluster2noun and mask within io.json's tolerances (labels identical), and the maps our UNet records.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGoldenCase } from '../../src/golden/golden-case.js';
import { formatCompare } from '../../src/golden/compare.js';
import { runGolden } from '../../src/golden/runner.js';
import { selfSegment, type ImageSegmentationMaps } from '../../src/methods/shared/self-segmentation/index.js';
import { fixturesDir } from '../helpers/paths.js';

const ciaTinyDir = join(fixturesDir, 'golden', 'cia-tiny');
const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-segment-golden-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

test('golden group segment: every tensor passes, k-means labels identical, our UNet records the same maps (and gives the same masks)', async () => {
  const report = await runGolden(ciaTinyDir, { only: ['segment'], cacheDir });
  const group = report.groups.find((g) => g.group === 'segment');
  assert.ok(group !== undefined, 'the case has a segment group');
  assert.equal(group.error, undefined, group.error);
  const failing = [...group.comparisons, ...group.checks].filter((c) => !c.ok).map(formatCompare);
  assert.deepEqual(failing, []);
  assert.equal(group.comparisons.length, 96);
  for (const c of group.comparisons.filter((r) => /labels|best_init|indices|candidate_ids|first_center|n_iter|mask_|assignment/.test(r.label))) {
    assert.equal(c.maxAbs, 0, `${c.label} identical`);
  }
  assert.equal(group.checks.length, 8, 'the maps from our UNet');
  assert.ok(
    group.notes.includes("masks from our UNet's maps, pixels differing from the golden masks: style_32 0/64, struct_32 0/64, style_64 0/256, struct_64 0/256"),
    group.notes.join('\n'),
  );
  assert.equal(report.ok, true);
});

test('the comparison can fail: another RandomState seed gives other k-means labels than the reference', () => {
  const golden = loadGoldenCase(ciaTinyDir);
  try {
    const maps = (image: 'style' | 'struct'): ImageSegmentationMaps => {
      const self = (res: string): { data: Float32Array; height: number; width: number; keys: number } => {
        const t = golden.get(`segment.self_attention_${res}.${image}`);
        const side = Math.sqrt(t.dims[0]!);
        return { data: t.data as Float32Array, height: side, width: side, keys: t.dims[1]! };
      };
      const cross = (res: string, row: number): { data: Float32Array; height: number; width: number; keys: number } => {
        const t = golden.get(`segment.cross_attention_${res}`);
        const [, heads, n, keys] = t.dims as [number, number, number, number];
        const data = new Float32Array(n * keys);
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < n * keys; i++) data[i] = data[i]! + (t.data as Float32Array)[(row * heads + h) * n * keys + i]! / heads;
        return { data, height: Math.sqrt(n), width: Math.sqrt(n), keys };
      };
      const row = image === 'style' ? 1 : 2;
      return { self_attention_32: self('32'), self_attention_64: self('64'), cross_attention_32: cross('32', row), cross_attention_64: cross('64', row) };
    };
    const options = { nouns: [{ index: 4, word: 'bird' }], objectNouns: ['bird'] };
    const same = selfSegment({ style: maps('style'), struct: maps('struct') }, options);
    const other = selfSegment({ style: maps('style'), struct: maps('struct') }, { ...options, seed: 2 });
    const golden64 = Array.from(golden.get('segment.kmeans.struct_64.labels').data as Int32Array);
    assert.deepEqual([...same.fits.struct_64.kmeans.labels], golden64);
    assert.notDeepEqual([...other.fits.struct_64.kmeans.labels], golden64);
    assert.deepEqual([...same.masks.structure.data], [...(golden.get('segment.mask_struct_64').data as Uint8Array)]);
  } finally {
    golden.close();
  }
});
