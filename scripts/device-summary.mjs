#!/usr/bin/env node
/**
 * The summary of scripts/device-check.sh: reads what the steps left in the work folder and writes one JSON file
 * (summary.json) plus a short table on stdout. Run after every step, so a run cut short still leaves a summary.
 *
 * Usage: node scripts/device-summary.mjs WORK_DIR OUT_FILE [--print]
 *
 * WORK_DIR holds: env.tsv (key<TAB>value), steps.tsv (name, status, rc, seconds, timeout, start, end, note),
 * probe.json, gen.json, golden.log, bench-<step>.json (a bench's last JSON line), transfer/run.json and
 * gpu.csv (epoch seconds, GPU utilisation %, memory used MiB, power W, SM clock MHz).
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [work, outFile, ...flags] = process.argv.slice(2);
if (work === undefined || outFile === undefined) {
  console.error('usage: node scripts/device-summary.mjs WORK_DIR OUT_FILE [--print]');
  process.exit(2);
}
const read = (f) => (existsSync(join(work, f)) ? readFileSync(join(work, f), 'utf8') : undefined);
const json = (f) => {
  const t = read(f);
  if (t === undefined) return undefined;
  const line = t.trim().split('\n').reverse().find((l) => l.trim().startsWith('{'));
  try {
    return line === undefined ? undefined : JSON.parse(line);
  } catch {
    return undefined;
  }
};
const tsv = (f) =>
  (read(f) ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'));

const summary = { tool: 'eye4eye device-check', written: new Date().toISOString() };
summary.env = Object.fromEntries(tsv('env.tsv').map(([k, ...v]) => [k, v.join('\t')]));

// GPU samples, for the whole run and per step
const gpu = tsv('gpu.csv')
  .map((r) => r.join(',').split(',').map((x) => Number(x.trim())))
  .filter((r) => r.length >= 3 && Number.isFinite(r[0]));
const gpuStats = (from, to) => {
  const rows = gpu.filter((r) => r[0] >= from && r[0] <= to);
  if (rows.length === 0) return undefined;
  const col = (i) => rows.map((r) => r[i]).filter((x) => Number.isFinite(x));
  const util = col(1);
  const mem = col(2);
  const power = col(3);
  return {
    samples: rows.length,
    util_mean_pct: util.length ? Math.round(util.reduce((a, b) => a + b, 0) / util.length) : null,
    util_max_pct: util.length ? Math.max(...util) : null,
    mem_max_mib: mem.length ? Math.max(...mem) : null,
    power_max_w: power.length ? Math.max(...power) : null,
  };
};

summary.steps = tsv('steps.tsv').map(([name, status, rc, seconds, timeout, start, end, note]) => {
  const s = { name, status, rc: Number(rc), seconds: Number(seconds), timeout_s: Number(timeout) };
  if (note) s.note = note;
  const g = gpuStats(Number(start), Number(end));
  if (g !== undefined) s.gpu = g;
  return s;
});
if (gpu.length > 0) summary.gpu_whole_run = gpuStats(-Infinity, Infinity);

summary.probe = json('probe.json');
summary.model_generation = json('gen.json');

const golden = read('golden.log');
if (golden !== undefined) {
  const groups = [...golden.matchAll(/^\[(PASS|FAIL)\] (\S+) \(([\d.]+) s\)/gm)].map((m) => ({ group: m[2], ok: m[1] === 'PASS', seconds: Number(m[3]) }));
  const tally = golden.match(/^tensors: .*$/m)?.[0];
  summary.golden = { tally: tally ?? null, groups, failed: groups.filter((g) => !g.ok).map((g) => g.group) };
}

const pick = (o, keys) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
const BENCH_KEYS = [
  'device',
  'precision',
  'onnxruntime',
  'cpus',
  'generation_s',
  'unet_graph',
  'unet_b6_graph',
  'unet_b1_s',
  'unet_b1_min_s',
  'unet_b2_s',
  'unet_b2_min_s',
  'unet_b6_s',
  'unet_b6_min_s',
  'unet_b6_match_s',
  'unet_b6_match_min_s',
  'match_overhead_pct',
  'unet_finite',
  'unet_b6_finite',
  'vae_encoder_graph',
  'vae_decoder_graph',
  'vae_encode_s',
  'vae_decode_s',
  'vae_finite',
  'text_graph',
  'text_s',
  'text_finite',
  'peak_rss_gb',
  'total_s',
];
summary.bench = {};
for (const f of existsSync(work) ? readdirSync(work).sort() : []) {
  const m = /^bench-(.+)\.json$/.exec(f);
  if (m === null) continue;
  const b = json(f);
  if (b === undefined) continue;
  const errors = Object.fromEntries(Object.entries(b).filter(([k]) => k.endsWith('_error')));
  summary.bench[m[1]] = { ...pick(b, BENCH_KEYS), ...errors };
}

const run = (() => {
  try {
    return JSON.parse(read(join('transfer', 'run.json')) ?? 'null');
  } catch {
    return null;
  }
})();
if (run !== null) {
  summary.transfer = {
    settings: pick(run.options ?? {}, ['numSteps', 'skip', 'size', 'featRange', 'adainRange', 'device', 'guidanceScale', 'injection']),
    timings_s: run.timings,
    sizes: run.sizes,
    versions: run.versions,
    inversion_cache: run.cache?.inversion,
  };
}

writeFileSync(outFile, `${JSON.stringify(summary, null, 2)}\n`);

if (flags.includes('--print')) {
  const f = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : x === undefined || x === null ? '-' : String(x));
  const lines = ['', '==== device-check summary ===='];
  const e = summary.env;
  lines.push(`machine: ${e.uname_m ?? '-'}, ${e.gpu ?? 'no nvidia-smi'}, node ${e.node ?? '-'} (${e.node_source ?? '-'})`);
  const p = summary.probe;
  if (p !== undefined)
    lines.push(
      `webgpu probe: ${p.exit === 0 ? 'OK' : `FAILED (${p.error ?? `exit ${p.exit}`})`}` +
        (p.webgpu_gflops !== undefined ? `; ${p.n}x${p.n} MatMul x${p.chain}: ${f(p.webgpu_ms)} ms = ${p.webgpu_gflops} GFLOP/s (cpu ${p.cpu_gflops}), looks like a GPU: ${p.looks_like_gpu}, max|diff| ${p.max_abs_diff}` : ''),
    );
  for (const s of summary.steps)
    lines.push(
      `step ${s.name.padEnd(10)} ${s.status.padEnd(8)} ${f(s.seconds, 1).padStart(6)} s (timeout ${s.timeout_s} s)${s.gpu ? `  gpu util mean ${s.gpu.util_mean_pct}% max mem ${s.gpu.mem_max_mib} MiB` : ''}${s.note ? `  ${s.note}` : ''}`,
    );
  if (summary.golden) lines.push(`golden: ${summary.golden.tally ?? '(no tally: cut short)'}${summary.golden.failed.length ? `; failing: ${summary.golden.failed.join(', ')}` : ''}`);
  for (const [k, b] of Object.entries(summary.bench)) {
    const parts = [];
    if (b.unet_b1_s !== undefined) parts.push(`UNet b1 ${f(b.unet_b1_s, 3)} s, b2 ${f(b.unet_b2_s, 3)} s`);
    if (b.unet_b6_s !== undefined) parts.push(`b6 ${f(b.unet_b6_s, 3)} s (match ${f(b.unet_b6_match_s, 3)} s, +${f(b.match_overhead_pct, 1)} %)`);
    if (b.vae_encode_s !== undefined) parts.push(`VAE encode ${f(b.vae_encode_s, 3)} s, decode ${f(b.vae_decode_s, 3)} s`);
    if (b.text_s !== undefined) parts.push(`text ${f(b.text_s, 3)} s`);
    const errs = Object.keys(b).filter((x) => x.endsWith('_error'));
    lines.push(`bench ${k} (${b.device ?? '?'}, ${b.precision ?? '?'}): ${parts.join('; ') || '-'}${errs.length ? `; errors: ${errs.map((x) => `${x}=${b[x]}`).join(', ')}` : ''}`);
  }
  if (summary.transfer) {
    const t = summary.transfer;
    const tm = t.timings_s ?? {};
    lines.push(
      `transfer ${t.settings.size}px ${t.settings.numSteps} steps skip ${t.settings.skip} on ${t.settings.device}: total ${f(tm.total, 1)} s (` +
        Object.entries(tm)
          .filter(([k]) => k !== 'total')
          .map(([k, v]) => `${k} ${f(v, 1)}`)
          .join(', ') +
        ')',
    );
  }
  if (summary.gpu_whole_run) lines.push(`gpu whole run: util mean ${summary.gpu_whole_run.util_mean_pct}%, max memory ${summary.gpu_whole_run.mem_max_mib} MiB, max power ${summary.gpu_whole_run.power_max_w} W`);
  console.log(lines.join('\n'));
}
