/**
 * The human-readable part of `npm run bench`: a table of the figures and the issue's targets (MET / MISSED).
 */
import { ORT_VERSION } from '../src/runtime/session.js';
import type { Args, Figures } from './common.js';
import { RATE_SPECS } from './rates.js';

/**
 * The issue's targets: every figure in `keys` at most `max` (below it where `strict`). The matching overhead is
 * met only if both the fastest-call wall time and the process CPU time say so.
 */
export const TARGETS: Record<string, { keys: readonly string[]; max: number; strict?: boolean; label: string }> = {
  unet_b1_s: { keys: ['unet_b1_s'], max: 4.6, label: 'UNet batch 1 <= 4.6 s' },
  unet_b6_s: { keys: ['unet_b6_s'], max: 28, label: 'UNet batch 6 <= 28 s' },
  peak_rss_b6_gb: { keys: ['peak_rss_b6_gb'], max: 6, label: 'peak RSS at batch 6 <= 6 GB' },
  match_overhead_pct: { keys: ['match_overhead_pct', 'match_overhead_cpu_pct'], max: 3, strict: true, label: 'matching < 3% of a UNet call (wall, CPU)' },
};

/** Each target: met (true / false), or null where a figure is missing; and the report's target lines. */
export function evaluateTargets(all: Figures): { met: Record<string, boolean | null>; lines: string[] } {
  const met: Record<string, boolean | null> = {};
  const lines: string[] = [];
  for (const [key, t] of Object.entries(TARGETS)) {
    const vs = t.keys.map((k) => all[k]);
    const ok = vs.every((v) => typeof v === 'number') ? vs.every((v) => (t.strict === true ? v < t.max : v <= t.max)) : null;
    met[key] = ok;
    const values = t.keys.map((k, i) => (t.keys.length > 1 ? `${k} ${fmt(vs[i])}` : fmt(vs[i]))).join(', ');
    lines.push(`target ${t.label.padEnd(40)} ${ok === null ? 'not measured' : ok ? `MET (${values})` : `MISSED (${values})`}`);
  }
  return { met, lines };
}

function fmt(x: unknown, unit = ''): string {
  return typeof x === 'number' ? `${x.toFixed(x < 10 ? 2 : 1)}${unit}` : x === null || x === undefined ? '-' : typeof x === 'string' ? x : JSON.stringify(x);
}

export function report(all: Figures, args: Args): void {
  const g = (k: string): unknown => all[k];
  const graph = (k: string): { graph_s?: number; built?: boolean; build_s?: number | null; session_s?: number } => all[k] ?? {};
  const rows: [string, string][] = [];
  const b6G = graph('unet_b6_graph');
  rows.push(['model generation', all['generated'] === true ? `${fmt(g('generation_s'), ' s')} (this run)` : 'already present']);
  for (const [label, key, hitKey] of [
    ['UNet (FreeU + e4e)', 'unet_graph', 'unet_cache_hit_s'],
    ['VAE encoder', 'vae_encoder_graph', 'vae_encoder_cache_hit_s'],
    ['VAE decoder', 'vae_decoder_graph', 'vae_decoder_cache_hit_s'],
    ['text encoder', 'text_graph', 'text_cache_hit_s'],
  ] as const) {
    const gr = graph(key);
    if (gr.session_s === undefined) continue;
    rows.push([`${label} graph build + save`, gr.built === true ? fmt(gr.graph_s, ' s') : `- (cached; --rebuild to measure)`]);
    rows.push([`${label} graph cache hit`, gr.built === false ? `${fmt(gr.graph_s, ' s')} (fresh process)` : `${fmt(g(hitKey), ' s')} (same process)`]);
    rows.push([`${label} session creation`, fmt(gr.session_s, ' s')]);
  }
  if (b6G.session_s !== undefined) {
    rows.push(['UNet graph cache hit (batch-6 process)', b6G.built === false ? fmt(b6G.graph_s, ' s') : '-']);
    rows.push([`UNet session creation, arena ${all['unet_b6_arena'] === true ? 'ON' : 'off'}`, fmt(b6G.session_s, ' s')]);
  }
  const meanMin = (mean: string, min: string): string => `${fmt(g(mean), ' s')} mean, ${fmt(g(min), ' s')} fastest`;
  rows.push(['UNet 512x512 batch 1', meanMin('unet_b1_s', 'unet_b1_min_s')]);
  rows.push(['UNet 512x512 batch 2', meanMin('unet_b2_s', 'unet_b2_min_s')]);
  rows.push([`UNet 512x512 batch 6 (arena ${all['unet_b6_arena'] === true ? 'ON' : 'off'})`, meanMin('unet_b6_s', 'unet_b6_min_s')]);
  rows.push(['UNet batch 6, e4e match ON', meanMin('unet_b6_match_s', 'unet_b6_match_min_s')]);
  rows.push([
    'matching overhead',
    `wall ${fmt(g('match_overhead_pct'), ' %')} fastest vs fastest (${fmt(g('match_overhead_mean_pct'), ' %')} of means), CPU time ${fmt(g('match_overhead_cpu_pct'), ' %')}; counted FLOPs ${fmt(g('match_flop_overhead_pct'), ' %')}`,
  ]);
  rows.push(['VAE encode 512x512', fmt(g('vae_encode_s'), ' s')]);
  rows.push(['VAE decode 512x512', fmt(g('vae_decode_s'), ' s')]);
  rows.push(['text encoder (1 prompt)', fmt(g('text_s'), ' s')]);
  rows.push(['SAM-HQ ViT-L encoder 1024x1024 (fastest)', fmt(g('sam_encoder_s'), ' s')]);
  rows.push(['SAM-HQ decoder, box prompt (fastest)', fmt(g('sam_decoder_s'), ' s')]);
  if (g('e2e_reduced_s') !== undefined) {
    const st = (g('e2e_settings') ?? {}) as { numSteps?: number; skip?: number };
    const ph = (g('e2e_phases_s') ?? {}) as Record<string, number>;
    rows.push([
      `e2e transfer 512x512, ${st.numSteps} steps skip ${st.skip}`,
      `${fmt(g('e2e_reduced_s'), ' s')} (load ${fmt(g('e2e_load_pipeline_s'), ' s')}, encode ${fmt(ph['encode'], ' s')}, text ${fmt(ph['text'], ' s')}, UNet session ${fmt(ph['unet_session'], ' s')}, decode ${fmt(ph['decode'], ' s')})`,
    ]);
    rows.push([
      'e2e inversions (app, struct)',
      `${fmt(ph['inversion_app'], ' s')}, ${fmt(ph['inversion_struct'], ' s')}; ${fmt(g('e2e_inversion_step_s'), ' s')} per step (batch 2, median)`,
    ]);
    rows.push(['e2e transfer loop', `${fmt(ph['transfer'], ' s')}; ${fmt(g('e2e_transfer_step_s'), ' s')} per step (batch 6, median)`]);
    rows.push([
      'e2e official settings (100 steps, skip 32)',
      `${fmt(g('e2e_official_estimate_s'), ' s')} = ${fmt(g('e2e_official_estimate_min'), ' min')} (EXTRAPOLATED from per-step figures)`,
    ]);
    rows.push(['peak RSS, e2e phase', fmt(g('e2e_peak_rss_gb'), ' GB')]);
  }
  if (g('gemm_gflops') !== undefined) {
    const calls = (g('gemm_timing') as { runs_s?: unknown[] } | undefined)?.runs_s?.length;
    rows.push([
      'float32 GEMM rate (MatMul 4096^3)',
      `${fmt(g('gemm_gflops'), ' GFLOP/s')} fastest, ${fmt(g('gemm_gflops_mean'), ' GFLOP/s')} mean (${calls} calls)`,
    ]);
  }
  for (const spec of RATE_SPECS) {
    if (g(`${spec.figure}_gflop`) === undefined) continue;
    const measured = `${fmt(spec.seconds(all), ' s')} ${spec.time} = ${fmt(g(`${spec.figure}_gflops`), ' GFLOP/s')}`;
    const ratio =
      g(`${spec.figure}_gemm_ratio`) === undefined ? '' : ` = ${fmt(g(`${spec.figure}_gemm_ratio`))} x GEMM (ideal ${fmt(g(`${spec.figure}_ideal_s`), ' s')})`;
    rows.push([`  ${spec.label}`, `${fmt(g(`${spec.figure}_gflop`), ' GFLOP')}; ${measured}${ratio}`]);
  }
  rows.push(['peak RSS, batch-6 phase', fmt(g('peak_rss_b6_gb'), ' GB')]);
  rows.push(['peak RSS, batch 1/2 phase (arena on)', fmt(g('rss_unet_peak_gb'), ' GB')]);
  rows.push(['peak RSS, any phase', fmt(g('peak_rss_gb'), ' GB')]);
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log('');
  console.log(`eye4eye bench: SD-1.5 shapes, random weights, onnxruntime-node ${ORT_VERSION}, threads ${args.threads ?? 'default'}`);
  console.log('-'.repeat(width + 30));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log('-'.repeat(width + 30));
  const load = Number(all['loadavg_1m_start'] ?? 0);
  if (load > 0.5)
    console.log(
      `note: 1-minute load average ${load.toFixed(2)} before the bench on ${String(all['cpus'])} CPUs: other processes competed for the cores, timings are pessimistic`,
    );
  if (g('e2e_official_estimate_s') !== undefined) {
    console.log(
      `note: the e2e official-settings figure is extrapolated from the reduced run's per-step medians (${fmt(g('e2e_official_estimate_mean_s'), ' s')} from the means), not measured`,
    );
  }
  for (const [figure, c] of Object.entries((g('flop_counts') ?? {}) as Record<string, { unreadable?: string[] }>)) {
    if ((c.unreadable?.length ?? 0) > 0)
      console.log(
        `note: the FLOP count of ${figure} misses ${c.unreadable!.length} node runs whose shapes the profile did not give (flop_counts.${figure}.unreadable)`,
      );
  }
  const { met, lines } = evaluateTargets(all);
  for (const line of lines) console.log(line);
  all['targets_met'] = met;
}
