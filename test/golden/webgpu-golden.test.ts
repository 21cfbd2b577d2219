/**
 * Every golden group of sd1-tiny on WebGPU (CI: SwiftShader), with the CPU's tolerances. The transfer runs in
 * forced-match mode; its natural-argmax rerun is skipped here (checks: false) to keep CI within its time budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCompare } from '../../src/golden/compare.js';
import { runGolden } from '../../src/golden/runner.js';
import { sd1TinyDir } from '../helpers/paths.js';
import { WEBGPU_SKIP } from '../helpers/webgpu.js';

test('every sd1-tiny golden group passes on WebGPU with the CPU tolerances', { skip: WEBGPU_SKIP }, async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-webgpu-golden-'));
  try {
    const report = await runGolden(sd1TinyDir, { device: 'webgpu', cacheDir, checks: false });
    const failed = report.groups
      .filter((g) => !g.ok)
      .map(
        (g) =>
          `${g.group}: ${
            g.error ??
            g.comparisons
              .filter((c) => !c.ok)
              .map(formatCompare)
              .join('; ')
          }`,
      );
    for (const g of report.groups) {
      const worst = Math.max(0, ...g.comparisons.map((c) => (Number.isFinite(c.maxAbs) ? c.maxAbs : 0)));
      console.log(
        `webgpu ${g.group}: ${g.ok ? 'PASS' : 'FAIL'} (${g.comparisons.length} tensors, max|diff| ${worst.toExponential(2)}, ${g.seconds.toFixed(1)} s)`,
      );
    }
    assert.deepEqual(failed, []);
    assert.ok(report.groups.length >= 10, `only ${report.groups.length} groups ran`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
