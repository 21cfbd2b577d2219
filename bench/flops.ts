/**
 * FLOP counts of graphs at their real input shapes, read from ONNX Runtime's profiler (see bench/README.md, "FLOPs
 * and the GEMM rate").
 *
 * A session created with `profileFilePrefix` (src/runtime/session.ts) writes a trace with one event per node run
 * (nodes inside If branches included); its `args` name the op (`op_name`) and the shapes of the node's inputs and
 * outputs (`input_type_shape`, `output_type_shape`). Only the products are counted, 2 FLOPs per multiply-add:
 *
 *   - MatMul, FusedMatMul: 2 x numel(Y) x K, K the contracted size of A (its last dim; its second-last where A is
 *     transposed, a FusedMatMul whose A[-2] is not Y[-2]); batch broadcasting included;
 *   - Gemm, FusedGemm: 2 x M x N x K, Y [M, N], K = numel(A) / M (A is [M, K] or, transposed, [K, M]);
 *   - Conv, FusedConv: 2 x numel(Y) x numel(W) / W[0] = 2 x B x Cout x Hout x Wout x (Cin / group) x kh x kw;
 *   - com.microsoft.MultiHeadAttention: q [B, S, H*D], k [B, T, H*D] (or [B, H, T, D]), Y [B, S, H*Dv]:
 *     2 B S T H D (q k^T) + 2 B S T H Dv (softmax x v) = 4 B H S T D.
 *
 * Everything else (elementwise ops, activations, normalisations, softmax, reductions, Resize, data movement) is not
 * counted: it is listed in `ignored` with its node runs. The trace omits the inputs onnxruntime pre-packed (the
 * constant B of a MatMul or Gemm), so the rules read B only through Y. A counted op whose shapes the rule cannot read
 * is listed in `unreadable`, never guessed.
 *
 * Which graph is counted: the profiled session runs at optimisation level `basic` (constant folding, redundant-node
 * removal, MatMul+Add -> Gemm): what onnxruntime computes, at the graph's own shapes. At level `all` the CPU provider
 * turns Convs into NCHWc kernels whose channel counts are padded to the vector width (SD-1.5's conv_out, 4 channels,
 * would count as 8 or 16), so the timed sessions' own profile is not used.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, type SessionOptions } from '../src/runtime/session.js';

/** One node run of a trace: op type and the shapes onnxruntime recorded. */
export interface NodeRun {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly (readonly number[])[];
  readonly outputs: readonly (readonly number[])[];
}

export type NodeFlops =
  { readonly kind: 'counted'; readonly flops: number } | { readonly kind: 'ignored' } | { readonly kind: 'unreadable'; readonly why: string };

export interface FlopCount {
  /** FLOPs of the counted ops (2 per multiply-add). */
  flops: number;
  /** Counted ops: node runs and FLOPs by op type. */
  byOp: Record<string, { nodes: number; flops: number }>;
  /** Ops not counted (elementwise, normalisation, data movement...): node runs by op type. */
  ignored: Record<string, number>;
  /** Node runs of counted op types whose shapes could not be read (with why); none in a good count. */
  unreadable: string[];
  /** Node runs in the trace. */
  nodeRuns: number;
}

const numel = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The shapes of `input_type_shape` / `output_type_shape`: `[{ "float": [2, 3] }, ...]`. */
function shapes(list: unknown): number[][] {
  if (!Array.isArray(list)) return [];
  return list.map((entry) => {
    const dims = entry !== null && typeof entry === 'object' ? Object.values(entry as Record<string, unknown>)[0] : undefined;
    return Array.isArray(dims) ? dims.map(Number) : [];
  });
}

/**
 * The node runs of a trace (onnxruntime's JSON array of Chrome trace events), one list per session run: the
 * `*_kernel_time` events inside each `model_run` event's time span, in the order of the runs.
 */
export function nodeRunsByCall(trace: unknown): NodeRun[][] {
  if (!Array.isArray(trace)) throw new Error('an onnxruntime profile is a JSON array of events');
  type Event = { cat?: unknown; name?: unknown; ts?: unknown; dur?: unknown; args?: Record<string, unknown> };
  const events = trace as Event[];
  const calls = events
    .filter((e) => e.cat === 'Session' && e.name === 'model_run')
    .map((e) => ({ start: Number(e.ts), end: Number(e.ts) + Number(e.dur), runs: [] as NodeRun[] }))
    .sort((a, b) => a.start - b.start);
  for (const e of events) {
    if (e.cat !== 'Node' || typeof e.name !== 'string' || !e.name.endsWith('_kernel_time') || e.args === undefined) continue;
    const ts = Number(e.ts);
    const call = calls.find((c) => ts >= c.start && ts <= c.end);
    if (call === undefined) throw new Error(`profile event ${e.name} at ${ts} us lies in no model_run`);
    call.runs.push({
      name: e.name.slice(0, -'_kernel_time'.length),
      op: String(e.args['op_name']),
      inputs: shapes(e.args['input_type_shape']),
      outputs: shapes(e.args['output_type_shape']),
    });
  }
  return calls.map((c) => c.runs);
}

/** FLOPs of one node run (rules in the file comment). */
export function nodeFlops(op: string, inputs: readonly (readonly number[])[], outputs: readonly (readonly number[])[]): NodeFlops {
  const a = inputs[0];
  const y = outputs[0];
  const unreadable = (why: string): NodeFlops => ({ kind: 'unreadable', why });
  switch (op) {
    case 'MatMul':
    case 'FusedMatMul': {
      if (a === undefined || a.length === 0 || y === undefined) return unreadable('no A or Y shape');
      // A 1-D A is [K]; a (Fused)MatMul with A transposed has A [..., K, M] where Y is [..., M, N].
      const transposed = op === 'FusedMatMul' && a.length >= 2 && y.length >= 2 && a[a.length - 2] !== y[y.length - 2];
      const k = transposed ? a[a.length - 2]! : a[a.length - 1]!;
      return { kind: 'counted', flops: 2 * numel(y) * k };
    }
    case 'Gemm':
    case 'FusedGemm': {
      if (a === undefined || a.length !== 2 || y === undefined || y.length !== 2) return unreadable('Gemm without 2-D A and Y shapes');
      return { kind: 'counted', flops: 2 * numel(y) * (numel(a) / y[0]!) };
    }
    case 'Conv':
    case 'FusedConv': {
      const w = inputs[1];
      if (w === undefined || w.length < 3 || y === undefined) return unreadable('no weight or Y shape');
      return { kind: 'counted', flops: 2 * numel(y) * (numel(w) / w[0]!) };
    }
    case 'MultiHeadAttention': {
      const k = inputs[1];
      if (a === undefined || a.length !== 3 || k === undefined || y === undefined || y.length !== 3)
        return unreadable('MultiHeadAttention without 3-D query, key and output shapes (packed QKV is not read)');
      const [b, s, hq] = a as [number, number, number];
      const t = k.length === 4 ? k[2]! : k[1]!;
      const hv = y[2]!;
      return { kind: 'counted', flops: 2 * b * s * t * hq + 2 * b * s * t * hv };
    }
    default:
      return { kind: 'ignored' };
  }
}

export function countFlops(runs: readonly NodeRun[]): FlopCount {
  const count: FlopCount = { flops: 0, byOp: {}, ignored: {}, unreadable: [], nodeRuns: runs.length };
  for (const r of runs) {
    const f = nodeFlops(r.op, r.inputs, r.outputs);
    if (f.kind === 'ignored') count.ignored[r.op] = (count.ignored[r.op] ?? 0) + 1;
    else if (f.kind === 'unreadable') count.unreadable.push(`${r.name} (${r.op}: ${f.why})`);
    else {
      const o = (count.byOp[r.op] ??= { nodes: 0, flops: 0 });
      o.nodes++;
      o.flops += f.flops;
      count.flops += f.flops;
    }
  }
  return count;
}

/** The optimisation level of the profiled sessions (see the file comment). */
export const PROFILE_OPTIMIZATION = 'basic' as const;

/**
 * FLOP counts of session runs: a fresh session of `model` with the profiler on (level `basic`), each of `calls`
 * given it in turn (each must make exactly one `session.run`), then the trace is split by run, counted and deleted.
 */
export async function profiledCounts(
  model: string | Uint8Array,
  options: Omit<SessionOptions, 'profileFilePrefix' | 'optimization'> & { name?: string },
  calls: readonly ((session: Session) => Promise<unknown>)[],
): Promise<FlopCount[]> {
  const dir = mkdtempSync(join(tmpdir(), 'e4e-bench-profile-'));
  try {
    const session = await Session.create(model, { ...options, optimization: PROFILE_OPTIMIZATION, profileFilePrefix: join(dir, 'profile') });
    try {
      for (const call of calls) await call(session);
      const trace: unknown = JSON.parse(readFileSync(session.endProfiling(), 'utf8'));
      const byCall = nodeRunsByCall(trace);
      if (byCall.length !== calls.length) throw new Error(`${session.modelName}: ${calls.length} calls profiled, the trace has ${byCall.length} runs`);
      return byCall.map(countFlops);
    } finally {
      await session.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
