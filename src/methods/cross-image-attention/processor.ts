/**
 * Cross-Image Attention's processor (the reference's AttentionProcessor + attention_utils; docs/method.md, CIA quirks
 * 2, 3, 13). At a swap site, while `cia_kv.<site>` names a row r >= 1, the OUT row (0) keeps its queries and attends
 * to row r's keys and values, and its attention map is contrasted before it multiplies the values:
 *
 *   A = softmax(Q_0 K_r^T / sqrt(d))                        per head, [H, S, S]
 *   m[k] = mean_j A[k, j]                                   the mean of ROW k (the reference's broadcasting quirk)
 *   A' = clip((A - m[None, :]) * contrast + m[None, :], 0, 1)   no renormalisation
 *   out_0 = A' V_r;  rows >= 1: plain attention
 *
 * A probed site also writes row 0's A and A' (golden parity). Without the swap the site is plain attention
 * (com.microsoft.MultiHeadAttention on the fused target). The self-segmentation maps are recorded by
 * methods/shared/self-segmentation's plan wrapper (withSegmentationMaps), not here.
 */
import { ModelBuildError } from '../../errors.js';
import { Scope, type GraphBuilder, type Value } from '../../onnx/graph-builder.js';
import {
  add,
  cast,
  concat,
  constFloat,
  constInt64,
  div,
  gather,
  greater,
  identity,
  ifElse,
  matMul,
  mul,
  multiHeadAttention,
  reduceMean,
  reshape,
  slice,
  softmax,
  squeeze,
  sub,
  transpose,
  unsqueeze,
} from '../../onnx/ops.js';
import { activationType } from '../../onnx/target.js';
import type { AttentionProcessor, AttentionSite, ProcessorContext, ProcessorInput, QKV } from '../../models/unet/attention-processor.js';
import { CIA_INPUT, CIA_OUTPUT, NEUTRAL, OUT_ROW } from './controls.js';

/** What the processor does at its (swap) site besides the swap. */
export interface CIASiteRoles {
  /** Writes the out row's map before / after the contrast (golden parity). */
  readonly probe: boolean;
}

const EMPTY_MAP_DIMS = [0, 0, 0] as const;

function emptyMap(s: Scope): Value {
  return identity(s, s.g.constant({ dtype: 'float32', dims: [...EMPTY_MAP_DIMS], data: new Float32Array(0) }), { name: 'Identity_empty' });
}

/** [B, N, H*D] -> [B, H, N, D] (or with `keysT` [B, H, D, N]). */
function splitHeads(s: Scope, x: Value, site: AttentionSite, name: string, keysT = false): Value {
  const d = site.channels / site.heads;
  const r = reshape(s, x, [0, 0, site.heads, d], { name: `Reshape_${name}` }); // [B, N, H, D]
  return transpose(s, r, keysT ? [0, 2, 3, 1] : [0, 2, 1, 3], { name: `Transpose_${name}` });
}

/** [B, H, S, D] -> [B, S, H*D] */
function mergeHeads(s: Scope, x: Value, site: AttentionSite, name: string): Value {
  return reshape(s, transpose(s, x, [0, 2, 1, 3], { name: `Transpose_${name}` }), [0, 0, site.channels], { name: `Reshape_${name}` });
}

/**
 * The reference's compute_scaled_dot_product_attention: softmax(Q K^T / sqrt(d)) in float32 (scores cast up under
 * fp16), probabilities [B, H, S, T].
 */
function probabilities(s: Scope, qkv: QKV, site: AttentionSite): Value {
  const d = site.channels / site.heads;
  const raw = matMul(s, splitHeads(s, qkv.q, site, 'q'), splitHeads(s, qkv.k, site, 'k', true), { name: 'MatMul_scores' }); // [B, H, S, T]
  const scores32 = s.g.target.precision === 'fp16' ? cast(s, raw, 'float32', { name: 'Cast_scores' }) : raw;
  return softmax(s, div(s, scores32, constFloat(s.g, Math.sqrt(d)), { name: 'Div_sqrt_d' }), -1, { name: 'Softmax' }); // [B, H, S, T]
}

/** probs [B, H, S, T] (float32) @ v -> [B, S, C] in the activation type. */
function attendValues(s: Scope, probs: Value, v: Value, site: AttentionSite): Value {
  const p = s.g.target.precision === 'fp16' ? cast(s, probs, 'float16', { name: 'Cast_probs' }) : probs;
  return mergeHeads(s, matMul(s, p, splitHeads(s, v, site, 'v'), { name: 'MatMul_values' }), site, 'merge'); // [B, S, C]
}

function plainAttention(s: Scope, qkv: QKV, site: AttentionSite): Value {
  if (s.g.target.attention === 'fused') return multiHeadAttention(s, qkv.q, qkv.k, qkv.v, site.heads); // [B, S, C]
  return attendValues(s, probabilities(s, qkv, site), qkv.v, site);
}

/** enhance_tensor + clip: (A - m[None, :]) * c + m[None, :] clipped to [0, 1], m = mean of each row of A. */
function contrasted(s: Scope, probs: Value, contrast: Value): Value {
  const rowMean = unsqueeze(s, reduceMean(s, probs, [-1], false, { name: 'ReduceMean_rows' }), [-2], { name: 'Unsqueeze_rows' }); // [1, H, 1, S]
  const scaled = mul(s, sub(s, probs, rowMean, { name: 'Sub_mean' }), contrast, { name: 'Mul_contrast' }); // [1, H, S, S]
  const enhanced = add(s, scaled, rowMean, { name: 'Add_mean' });
  return s.op('Clip', [enhanced, constFloat(s.g, 0), constFloat(s.g, 1)], {}, { name: 'Clip' }); // [1, H, S, S]
}

interface Branch {
  out: Value;
  maps: Value;
  pre?: Value;
  post?: Value;
}

/**
 *   q0 = q[0:1], k_r = k[r], v_r = v[r]  ─ A = softmax(q0 k_r^T / sqrt d) ─ contrast ─ A' v_r ─┐
 *   rows 1.. : plain attention(q[1:], k[1:], v[1:]) ──────────────────────────────────────────── Concat ─ [B, S, C]
 */
function swapBranch(s: Scope, ctx: ProcessorContext, qkv: QKV, kv: Value): Branch {
  const { site } = ctx;
  const first = (x: Value, name: string): Value => slice(s, x, { starts: [OUT_ROW], ends: [OUT_ROW + 1], axes: [0] }, { name: `Slice_out_${name}` }); // [1, N, C]
  const rest = (x: Value, name: string): Value => slice(s, x, { starts: [OUT_ROW + 1], ends: [2 ** 62], axes: [0] }, { name: `Slice_rest_${name}` }); // [B-1, N, C]
  const kr = gather(s, qkv.k, kv, 0, { name: 'Gather_k_source' }); // [1, T, C]
  const vr = gather(s, qkv.v, kv, 0, { name: 'Gather_v_source' }); // [1, T, C]
  const probs = probabilities(s.child('out'), { q: first(qkv.q, 'q'), k: kr, v: vr }, site); // [1, H, S, S]
  const post = contrasted(s, probs, ctx.input(CIA_INPUT.contrast));
  const out0 = attendValues(s.child('out'), post, vr, site); // [1, S, C]
  const others = plainAttention(s.child('rest'), { q: rest(qkv.q, 'q'), k: rest(qkv.k, 'k'), v: rest(qkv.v, 'v') }, site); // [B-1, S, C]
  return {
    out: concat(s, [out0, others], 0, { name: 'Concat_rows' }), // [B, S, C]
    maps: emptyMap(s),
    pre: squeeze(s, probs, [0], { name: 'Squeeze_pre' }), // [H, S, S]
    post: squeeze(s, post, [0], { name: 'Squeeze_post' }),
  };
}

/** A subgraph of `parent`'s graph returning a branch's values (out, maps[, pre, post]). */
function branchGraph(parent: Scope, ctx: ProcessorContext, name: string, probe: boolean, build: (s: Scope) => Branch): GraphBuilder {
  const path = `${parent.path}/${name}`;
  const sub = parent.g.subgraph(path);
  const s = new Scope(sub, path);
  const b = build(s);
  const target = parent.g.target;
  // dims of the same name are taken to be equal by onnxruntime: every branch names its own
  const mapDims = (what: string): string[] => [`${path}/${what}_0`, `${path}/${what}_1`, `${path}/${what}_2`];
  sub.output(identity(s, b.out, { name: 'Identity_out' }), `${path}/out`, activationType(target), [
    'batch',
    `tokens_${ctx.site.modulePath}`,
    ctx.site.channels,
  ]);
  sub.output(identity(s, b.maps, { name: 'Identity_maps' }), `${path}/maps`, 'float32', mapDims('maps'));
  if (probe) {
    sub.output(identity(s, b.pre ?? emptyMap(s), { name: 'Identity_pre' }), `${path}/pre`, 'float32', mapDims('pre'));
    sub.output(identity(s, b.post ?? emptyMap(s), { name: 'Identity_post' }), `${path}/post`, 'float32', mapDims('post'));
  }
  return sub;
}

/** cia_kv >= 0 ? swap : plain attention. */
function attend(ctx: ProcessorContext, qkv: QKV, roles: CIASiteRoles): Value {
  const s: Scope = ctx.scope.sub('cia');
  const site = ctx.site;
  const kv = ctx.input(CIA_INPUT.kv(site.modulePath));
  const swapping = reshape(s, greater(s, kv, constInt64(s.g, [-1]), { name: 'Greater_kv' }), [], { name: 'Reshape_kv' }); // [] bool
  const [out, , pre, post] = ifElse(
    s,
    swapping,
    branchGraph(s, ctx, 'swap', roles.probe, (ss) => swapBranch(ss, ctx, qkv, kv)),
    branchGraph(s, ctx, 'plain', roles.probe, (ps) => ({ out: plainAttention(ps, qkv, site), maps: emptyMap(ps) })),
    roles.probe ? 4 : 2,
    { name: 'If_swap' },
  );
  if (roles.probe) {
    ctx.output(CIA_OUTPUT.probePre(site.modulePath), pre!);
    ctx.output(CIA_OUTPUT.probePost(site.modulePath), post!);
  }
  return out!;
}

const mapIO = (name: string): { name: string; dtype: 'float32'; dims: string[] } => ({ name, dtype: 'float32', dims: [`${name}_0`, `${name}_1`, `${name}_2`] });

/** The processor of one swap site (an up-block self-attention). */
export function crossImageAttentionProcessor(site: AttentionSite, roles: CIASiteRoles): AttentionProcessor {
  if (site.kind !== 'self') throw new ModelBuildError(`${site.modulePath}: Cross-Image Attention swaps keys and values in self-attention only`);
  const inputs: ProcessorInput[] = [
    { name: CIA_INPUT.contrast, dtype: 'float32', dims: [1], neutral: NEUTRAL.contrast },
    { name: CIA_INPUT.kv(site.modulePath), dtype: 'int64', dims: [1], neutral: NEUTRAL.kv },
  ];
  const outputs = roles.probe ? [mapIO(CIA_OUTPUT.probePre(site.modulePath)), mapIO(CIA_OUTPUT.probePost(site.modulePath))] : [];
  return { inputs, outputs, attend: (ctx, qkv) => attend(ctx, qkv, roles) };
}
