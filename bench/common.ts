/**
 * Shared pieces of `npm run bench` (see bench/README.md): paths, the parsed arguments' type, logging, rounding,
 * synthetic inputs and the timing helpers used by the phases.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../src/tensor/tensor.js';
import type { ExecutionProvider } from '../src/runtime/session.js';
import type { Precision } from '../src/onnx/target.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root: dist/bench/*.js -> ../.. */
export const REPO = resolve(HERE, '..', '..');
export const CONFIG_DIR = join(REPO, 'test', 'fixtures', 'configs', 'sd-1.5');
export const TINY_DIR = join(REPO, 'test', 'fixtures', 'golden', 'sd1-tiny', 'model');
export const TOKENIZER_DIR = join(TINY_DIR, 'tokenizer');
export const EXAMPLES_DIR = join(REPO, 'examples');
export const GIB = 2 ** 30;
/** In running order: the GEMM rate first, the FLOP counts last (they profile the graphs the other phases used). */
export const PHASES = ['gemm', 'text', 'vae', 'unet', 'unet_b6', 'e2e', 'sam', 'count'] as const;
export type Phase = (typeof PHASES)[number];

export interface Args {
  modelDir: string;
  graphDir: string;
  quick: boolean;
  only: 'unet' | 'vae' | 'text' | 'e2e' | 'gemm' | 'sam' | undefined;
  selfCheck: boolean;
  rebuild: boolean;
  threads: number | undefined;
  calls: number;
  phase: Phase | undefined;
  /** Investigation only: keep the CPU memory arena on in the batch-6 session. */
  b6Arena: boolean;
  /** The `count` phase: the measured phases whose calls it counts. */
  countFor: Phase[];
  /** Profile again even where flop-counts.json has the count. */
  recount: boolean;
  /** Execution provider of every phase (default cpu). */
  device: ExecutionProvider;
  /** Graph precision of the component phases (ModelOptions.precision; default fp32). */
  precision: Precision;
}

export type Figures = Record<string, unknown>;

/** When this process started (module load): the clock of `log` and of `total_s`. */
export const started = performance.now();
export function log(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

export const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
export const maxRssGb = (): number => (process.resourceUsage().maxRSS * 1024) / GIB; // maxRSS is in KiB

// ------------------------------------------------------------------------------------------------ inputs

export function randn(dims: number[], seed = 1): Tensor<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const uniform = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    if (i + 1 < n) data[i + 1] = r * Math.sin(t);
  }
  return { dtype: 'float32', dims, data };
}

export function allFinite(t: Tensor<'float32'>): boolean {
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------ timing helpers

export interface Timing {
  /** The warm-up call (first run of the session at this shape). */
  first_s: number;
  /** Timed calls after the warm-up. */
  runs_s: number[];
  mean_s: number;
  /** The fastest timed call: the least disturbed by other processes on a shared machine. */
  min_s: number;
  /** Process CPU seconds (all threads) of each timed call. */
  cpu_s: number[];
}

export function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

export async function timeCalls(label: string, fn: () => Promise<unknown>, calls: number, budgetS = Infinity): Promise<Timing> {
  let t = performance.now();
  await fn();
  const first = (performance.now() - t) / 1000;
  log(`${label}: warm-up ${first.toFixed(2)} s`);
  const runs: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < calls; i++) {
    if (i > 0 && runs.reduce((a, b) => a + b, 0) + runs[0]! > budgetS) break;
    (globalThis as { gc?: () => void }).gc?.();
    const c = process.cpuUsage();
    t = performance.now();
    await fn();
    runs.push((performance.now() - t) / 1000);
    cpu.push(cpuSeconds(c));
    log(`${label}: call ${i + 1} ${runs[i]!.toFixed(2)} s (cpu ${cpu[i]!.toFixed(2)} s)`);
  }
  return {
    first_s: round(first),
    runs_s: runs.map((r) => round(r)),
    mean_s: round(runs.reduce((a, b) => a + b, 0) / runs.length),
    min_s: round(Math.min(...runs)),
    cpu_s: cpu.map((r) => round(r)),
  };
}

/** Status-message timestamps: splits "obtain the graph (build or cache hit)" from "create the ORT session". */
export class StatusClock {
  private t0 = performance.now();
  loadedAt: number | undefined;
  builtSeconds: number | undefined;
  cached: boolean | undefined;

  reset(): void {
    this.t0 = performance.now();
    this.loadedAt = undefined;
    this.builtSeconds = undefined;
    this.cached = undefined;
  }

  onStatus = (message: string): void => {
    log(message);
    const m = /^loading \S+ \((?:built in ([\d.]+) s|cached)\)/.exec(message);
    if (m !== null) {
      this.loadedAt = performance.now();
      this.cached = m[1] === undefined;
      this.builtSeconds = m[1] === undefined ? undefined : Number(m[1]);
    }
  };

  /** After the session promise resolved: { graph_s (build or cache lookup), built, session_s }. */
  split(): { graph_s: number; built: boolean; build_s: number | null; session_s: number } {
    const end = performance.now();
    const loaded = this.loadedAt ?? this.t0;
    return {
      graph_s: round((loaded - this.t0) / 1000),
      built: this.cached === false,
      build_s: this.builtSeconds ?? null,
      session_s: round((end - loaded) / 1000),
    };
  }
}
