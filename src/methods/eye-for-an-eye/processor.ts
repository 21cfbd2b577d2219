/**
 * Eye-for-an-eye's attention processor (docs/method.md §4; quirks 1, 2, 4, 8, 11): at the sites it is given (attn1
 * modules), the hidden states attn1 receives (norm1's output, [B, HW, C]) are edited before to_q / to_k / to_v, steered
 * per call by the graph inputs of controls.ts; it writes, per site, the style token each out token took.
 *
 * Matching, for out token p: m(p) = argmax_q cos(F_out[p] * mS[p], F_style[q] * mA[q]) (first maximum on ties), then
 * F_out[p] <- F_style[m(p)] (the UNMASKED style feature); out tokens whose masked feature is all zero keep theirs.
 * One [N, C] x [C, N] product and one ArgMax per site: the N x N similarity exists once, not per head or batch row.
 */
import { ModelBuildError } from '../../errors.js';
import { Scope, type Value } from '../../onnx/graph-builder.js';
import { activationType } from '../../onnx/target.js';
import {
  abs,
  argMax,
  cast,
  concat,
  constFloat,
  constInt64,
  div,
  equal,
  gather,
  greater,
  identity,
  ifElse,
  less,
  matMul,
  max,
  mul,
  reduceMax,
  reduceSum,
  reshape,
  resizeBilinear,
  shape,
  slice,
  sqrt,
  transpose,
  unsqueeze,
  where,
} from '../../onnx/ops.js';
import type { AttentionProcessor, ProcessorContext, ProcessorInput, QKV } from '../../models/unet/attention-processor.js';
import { E4E_INPUT, E4E_MODE, E4E_OUTPUT, NEUTRAL, SLOT_ORDER, type SlotName } from './controls.js';

/** Index of each slot in the `e4e_slots` input. */
const SLOT_INDEX = Object.fromEntries(SLOT_ORDER.map((name, i) => [name, i])) as Readonly<Record<SlotName, number>>;

/** F.normalize's epsilon: x / max(||x||, 1e-12). */
const NORMALIZE_EPS = 1e-12;

/** The inputs every site shares (declared once per graph by the UNet builder). */
const SHARED_INPUTS: readonly ProcessorInput[] = [
  { name: E4E_INPUT.mode, dtype: 'int64', dims: [1], neutral: NEUTRAL.mode },
  { name: E4E_INPUT.slots, dtype: 'int64', dims: [SLOT_ORDER.length], neutral: NEUTRAL.slots },
  { name: E4E_INPUT.maskStruct, dtype: 'float32', dims: ['mask_struct_height', 'mask_struct_width'], neutral: NEUTRAL.mask },
  { name: E4E_INPUT.maskApp, dtype: 'float32', dims: ['mask_app_height', 'mask_app_width'], neutral: NEUTRAL.mask },
];

/**
 * Symbolic dims of subgraph outputs: the batch is the UNet's `batch`; the token count is named per site, because
 * onnxruntime takes dims of the same name to be equal (its memory planner reuses buffers on that basis).
 */
const BATCH = 'batch';
const tokens = (site: { modulePath: string }): string => `tokens_${site.modulePath}`;

/** Height and width of the token map, int64 [1] each. */
interface TokenMap {
  height: Value;
  width: Value;
}

interface SharedInputs {
  mode: Value;
  slots: Value;
  maskStruct: Value;
  maskApp: Value;
}

/** The processor of one site (a self-attention's diffusers module path). */
export function featureInjectionProcessor(modulePath: string): AttentionProcessor {
  return {
    inputs: [...SHARED_INPUTS, { name: E4E_INPUT.forced(modulePath), dtype: 'int64', dims: [`forced_${modulePath}`], neutral: NEUTRAL.forced }],
    outputs: [{ name: E4E_OUTPUT.match(modulePath), dtype: 'int64', dims: [`tokens_${modulePath}`] }],
    editSources(ctx, sources) {
      if (ctx.site.kind !== 'self') throw new ModelBuildError(`${ctx.site.modulePath}: feature injection acts on self-attention only`);
      const inputs: SharedInputs = {
        mode: ctx.input(E4E_INPUT.mode),
        slots: ctx.input(E4E_INPUT.slots),
        maskStruct: ctx.input(E4E_INPUT.maskStruct),
        maskApp: ctx.input(E4E_INPUT.maskApp),
      };
      const { qk, v } = buildInjection(ctx, sources.q, inputs);
      return { q: qk, k: qk, v } satisfies QKV;
    },
  };
}

function row(s: Scope, x: Value, slots: Value, slot: SlotName): Value {
  const index = gather(s, slots, constInt64(s.g, SLOT_INDEX[slot]), 0, { name: `Gather_slot_${slot}` }); // [] int64
  return gather(s, x, index, 0, { name: `Gather_${slot}` }); // [N, C]
}

/**
 * x[slot] <- replacement, as a new tensor: Where over a one-hot row mask (not ScatterND, whose opset-16 kernel
 * CUDA and WebGPU lack in onnxruntime, so it would run on the CPU with copies to and from the device).
 *
 *   rows = Range(0, B) == slots[slot]  [B, 1, 1]  ─ Where(rows, replacement [1, N, C], x) ─ [B, N, C]
 */
function replaceRow(s: Scope, x: Value, slots: Value, slot: SlotName, replacement: Value): Value {
  const index = slice(s, slots, { starts: [SLOT_INDEX[slot]], ends: [SLOT_INDEX[slot] + 1], axes: [0] }, { name: `Slice_slot_${slot}` }); // [1]
  const batch = slice(s, shape(s, x, { name: `Shape_batch_${slot}` }), { starts: [0], ends: [1], axes: [0] }, { name: `Slice_batch_${slot}` }); // [1]
  const rows = s.op(
    'Range',
    [constInt64(s.g, 0), reshape(s, batch, [], { name: `Reshape_batch_${slot}` }), constInt64(s.g, 1)],
    {},
    { name: `Range_rows_${slot}` },
  ); // [B]
  const isSlot = reshape(s, equal(s, rows, index, { name: `Equal_row_${slot}` }), [-1, 1, 1], { name: `Reshape_row_${slot}` }); // [B, 1, 1]
  const updates = unsqueeze(s, replacement, [0], { name: `Unsqueeze_rows_${slot}` }); // [1, N, C]
  return where(s, isSlot, updates, x, { name: `Where_row_${slot}` }); // [B, N, C]
}

/** A mask [Hm, Wm] resized bilinearly (align_corners false) to the token map, flattened to [N, 1]. */
function tokenMask(s: Scope, mask: Value, map: TokenMap, name: string): Value {
  const m4 = unsqueeze(s, mask, [0, 1], { name: `Unsqueeze_${name}` }); // [1, 1, Hm, Wm]
  const sizes = concat(s, [constInt64(s.g, [1, 1]), map.height, map.width], 0, { name: `Concat_size_${name}` }); // [4]
  const resized = resizeBilinear(s, m4, sizes, { name: `Resize_${name}` }); // [1, 1, h, w]
  return reshape(s, resized, [-1, 1], { name: `Reshape_${name}` }); // [N, 1]
}

function l2normalize(s: Scope, x: Value, name: string): Value {
  const norm = sqrt(s, reduceSum(s, mul(s, x, x, { name: `Mul_sq_${name}` }), [1], true, { name: `ReduceSum_${name}` }), { name: `Sqrt_${name}` }); // [N, 1]
  return div(s, x, max(s, norm, constFloat(s.g, NORMALIZE_EPS), { name: `Max_eps_${name}` }), { name: `Div_${name}` }); // [N, C]
}

/**
 *   out = x[matchOut] * mS, style = x[matchStyle] * mA
 *   valid = max|out| > 0;  idx = forced ? forced : argmax(normalize(out) normalize(style)^T)
 *   chosen = valid ? idx : -1  (forced: idx >= 0 ? idx : -1)
 */
function matchIndices(
  s: Scope,
  map: TokenMap & { readonly site: { readonly modulePath: string } },
  x: Value,
  inputs: SharedInputs & { forced: Value },
): { index: Value; valid: Value } {
  const g = s.g;
  const { site } = map;
  const forced = inputs.forced;
  const isForced = greater(s, reshape(s, s.op('Size', [forced]), [], { name: 'Reshape_size' }), constInt64(g, 0), { name: 'Greater_forced' }); // []

  const thenG = g.subgraph(`${s.path}/forced`);
  const ts = new Scope(thenG, `${s.path}/forced`);
  thenG.output(identity(ts, forced), `${s.path}/forced/index`, 'int64', [tokens(site)]);
  thenG.output(ts.op('Not', [less(ts, forced, constInt64(g, 0))]), `${s.path}/forced/valid`, 'bool', [tokens(site)]);

  const elseG = g.subgraph(`${s.path}/argmax`);
  const es = new Scope(elseG, `${s.path}/argmax`);
  // The cosine matching is float32 whatever the precision (fp16 rows are cast up): decisions are near ties.
  const up = (v: Value, name: string): Value => (g.target.precision === 'fp16' ? cast(es, v, 'float32', { name: `Cast_${name}_fp32` }) : v);
  const out = up(row(es, x, inputs.slots, 'matchOut'), 'out'); // [N, C]
  const style = up(row(es, x, inputs.slots, 'matchStyle'), 'style'); // [N, C]
  const outMasked = mul(es, out, tokenMask(es, inputs.maskStruct, map, 'mask_struct'), { name: 'Mul_mask_struct' }); // [N, C]
  const styleMasked = mul(es, style, tokenMask(es, inputs.maskApp, map, 'mask_app'), { name: 'Mul_mask_app' }); // [N, C]
  const nonzero = greater(es, reduceMax(es, abs(es, outMasked), [1], false), constFloat(g, 0)); // [N] bool
  const sim = matMul(es, l2normalize(es, outMasked, 'out'), transpose(es, l2normalize(es, styleMasked, 'style'), [1, 0]), { name: 'MatMul_cosine' }); // [N, N]
  elseG.output(argMax(es, sim, 1, false), `${s.path}/argmax/index`, 'int64', [tokens(site)]); // [N]
  elseG.output(identity(es, nonzero), `${s.path}/argmax/valid`, 'bool', [tokens(site)]);

  const [index, valid] = ifElse(s, isForced, thenG, elseG, 2, { name: 'If_forced' });
  return { index: index!, valid: valid! };
}

/** style rows picked by idx where valid, the own row elsewhere: [N, C]. */
function pickRows(s: Scope, own: Value, style: Value, index: Value, valid: Value, name: string): Value {
  const safe = max(s, index, constInt64(s.g, 0), { name: `Max_${name}` }); // [N]
  const picked = gather(s, style, safe, 0, { name: `Gather_${name}` }); // [N, C]
  return where(s, unsqueeze(s, valid, [1], { name: `Unsqueeze_${name}` }), picked, own, { name: `Where_${name}` }); // [N, C]
}

function fill(s: Scope, like: Value, value: number, name: string): Value {
  const n = slice(s, shape(s, like, { name: `Shape_${name}` }), { starts: [1], ends: [2], axes: [0] }, { name: `Slice_${name}` }); // [1]
  return s.op(
    'ConstantOfShape',
    [n],
    { value: { tensor: { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(value)) } } },
    { name: `ConstantOfShape_${name}` },
  ); // [N]
}

/**
 *   mode ─ If(mode == off) ── (x, x, -2)
 *          else If(mode == structCopy) ── (x[copyOut] <- x[copySource], same, -2)
 *          else matching ── mode == match: (x[matchOut] <- style rows, same, idx)
 *                           mode == vInjection: (x, x[vOut] <- x[vStyle] rows, idx)
 */
function buildInjection(ctx: ProcessorContext, x: Value, inputs: SharedInputs): { qk: Value; v: Value } {
  const { site } = ctx;
  const g = ctx.scope.g;
  const s: Scope = ctx.scope.sub('e4e');
  const modeIs = (mode: number, name: string): Value =>
    reshape(s, equal(s, inputs.mode, constInt64(g, [mode]), { name: `Equal_${name}` }), [], { name: `Reshape_${name}` });

  const offG = g.subgraph(`${s.path}/off`);
  const offS = new Scope(offG, `${s.path}/off`);
  offG.output(identity(offS, x, { name: 'Identity_qk' }), `${s.path}/off/qk`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  offG.output(identity(offS, x, { name: 'Identity_v' }), `${s.path}/off/v`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  offG.output(fill(offS, x, -2, 'none'), `${s.path}/off/index`, 'int64', [tokens(site)]);

  const onG = g.subgraph(`${s.path}/on`);
  const onS = new Scope(onG, `${s.path}/on`);
  const copyG = onG.subgraph(`${s.path}/copy`);
  const copyS = new Scope(copyG, `${s.path}/copy`);
  const copied = replaceRow(copyS, x, inputs.slots, 'copyOut', row(copyS, x, inputs.slots, 'copySource'));
  copyG.output(identity(copyS, copied, { name: 'Identity_qk' }), `${s.path}/copy/qk`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  copyG.output(identity(copyS, copied, { name: 'Identity_v' }), `${s.path}/copy/v`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  copyG.output(fill(copyS, x, -2, 'none'), `${s.path}/copy/index`, 'int64', [tokens(site)]);

  const matchG = onG.subgraph(`${s.path}/match`);
  const matchS = new Scope(matchG, `${s.path}/match`);
  const forced = ctx.input(E4E_INPUT.forced(site.modulePath));
  const { index, valid } = matchIndices(matchS, ctx, x, { ...inputs, forced });
  const chosen = where(matchS, valid, index, constInt64(g, -1), { name: 'Where_chosen' }); // [N]
  const isV = modeIs(E4E_MODE.vInjection, 'v_injection');
  const matchedQk = replaceRow(
    matchS,
    x,
    inputs.slots,
    'matchOut',
    pickRows(matchS, row(matchS, x, inputs.slots, 'matchOut'), row(matchS, x, inputs.slots, 'matchStyle'), index, valid, 'match'),
  );
  const matchedV = replaceRow(
    matchS,
    x,
    inputs.slots,
    'vOut',
    pickRows(matchS, row(matchS, x, inputs.slots, 'vOut'), row(matchS, x, inputs.slots, 'vStyle'), index, valid, 'v'),
  );
  matchG.output(where(matchS, isV, x, matchedQk, { name: 'Where_qk' }), `${s.path}/match/qk`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  matchG.output(where(matchS, isV, matchedV, matchedQk, { name: 'Where_v' }), `${s.path}/match/v`, activationType(g.target), [
    BATCH,
    tokens(site),
    site.channels,
  ]);
  matchG.output(identity(matchS, chosen, { name: 'Identity_index' }), `${s.path}/match/index`, 'int64', [tokens(site)]);

  const [cqk, cv, ci] = ifElse(onS, modeIs(E4E_MODE.structCopy, 'copy'), copyG, matchG, 3, { name: 'If_copy' });
  onG.output(identity(onS, cqk!, { name: 'Identity_qk' }), `${s.path}/on/qk`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  onG.output(identity(onS, cv!, { name: 'Identity_v' }), `${s.path}/on/v`, activationType(g.target), [BATCH, tokens(site), site.channels]);
  onG.output(identity(onS, ci!, { name: 'Identity_index' }), `${s.path}/on/index`, 'int64', [tokens(site)]);

  const [qk, v, matchIndex] = ifElse(s, modeIs(E4E_MODE.off, 'off'), offG, onG, 3, { name: 'If_mode' });
  ctx.output(E4E_OUTPUT.match(site.modulePath), matchIndex!);
  return { qk: qk!, v: v! };
}
