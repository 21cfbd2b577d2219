/**
 * bench/rates.ts and bench/report.ts: the GEMM graph, which calls get counted, the ratio figures, the targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countedFigures, gemmModel, rateFigures } from '../bench/rates.js';
import { evaluateTargets } from '../bench/report.js';
import { Session } from '../src/runtime/session.js';
import { float32 } from '../src/tensor/tensor.js';

test('the GEMM graph multiplies its input by a fixed weight', async () => {
  const n = 8;
  const session = await Session.create(gemmModel(n), { name: 'gemm-test' });
  const eye = float32([n, n]);
  for (let i = 0; i < n; i++) eye.data[i * n + i] = 1;
  const twice = float32(
    [n, n],
    Array.from(eye.data, (x) => 2 * x),
  );
  const b = (await session.run({ a: eye }))['y']!.data as Float32Array; // I B = B
  const y = (await session.run({ a: twice }))['y']!.data as Float32Array;
  assert.deepEqual(
    Array.from(y),
    Array.from(b, (x) => 2 * x),
  );
  assert.ok(b.some((x) => x !== 0));
  await session.dispose();
});

test('each measured phase has its calls counted; e2e steps use the UNet batch-2 and batch-6 match counts', () => {
  assert.deepEqual([...countedFigures(['unet'])], ['unet_b1', 'unet_b2']);
  assert.deepEqual([...countedFigures(['e2e'])].sort(), ['unet_b2', 'unet_b6_match']);
  assert.deepEqual([...countedFigures(['text', 'vae'])], ['text', 'vae_encode', 'vae_decode']);
});

test('rate figures: GFLOP, GFLOP/s, ratio to the GEMM rate, ideal time', () => {
  const count = (gflop: number) => ({ gflop, by_op_gflop: {}, ignored_nodes: {}, unreadable: [], call: '', cached: false });
  const all: Record<string, unknown> = {
    gemm_gflops: 100,
    flop_counts: { unet_b1: count(800), unet_b2: count(1600), unet_b6: count(4800), unet_b6_match: count(4896), text: count(12) },
    unet_b1_min_s: 4,
    unet_b6_min_s: 30,
    unet_b6_match_min_s: 31,
    text_timing: { min_s: 0.5 },
    e2e_inversion_step_s: 10,
  };
  rateFigures(all);
  assert.equal(all['unet_b1_gflop'], 800);
  assert.equal(all['unet_b1_gflops'], 200);
  assert.equal(all['unet_b1_gemm_ratio'], 2);
  assert.equal(all['unet_b1_ideal_s'], 8);
  assert.equal(all['text_gflops'], 24);
  assert.equal(all['e2e_inversion_step_gflop'], 1600);
  assert.equal(all['e2e_inversion_step_gemm_ratio'], 1.6);
  assert.equal(all['unet_b2_gflop'], undefined); // counted, not measured in this run
  assert.equal(all['e2e_transfer_step_gflop'], undefined);
  assert.equal(all['vae_encode_gflop'], undefined);
  assert.equal(all['match_flop_overhead_pct'], 2);
});

test('the matching target needs both the wall-time and the CPU-time overhead under 3 %', () => {
  assert.equal(evaluateTargets({ match_overhead_pct: 1.5, match_overhead_cpu_pct: 2.9 }).met['match_overhead_pct'], true);
  assert.equal(evaluateTargets({ match_overhead_pct: 1.5, match_overhead_cpu_pct: 3 }).met['match_overhead_pct'], false);
  assert.equal(evaluateTargets({ match_overhead_pct: 3.2, match_overhead_cpu_pct: 1 }).met['match_overhead_pct'], false);
  assert.equal(evaluateTargets({ match_overhead_pct: 1 }).met['match_overhead_pct'], null);
  assert.match(
    evaluateTargets({ match_overhead_pct: 1.5, match_overhead_cpu_pct: 2.9 }).lines.join('\n'),
    /match_overhead_pct 1\.50, match_overhead_cpu_pct 2\.90/,
  );
});
