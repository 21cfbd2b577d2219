/**
 * Eye-for-an-eye inside the UNet graph (METHOD.md §4; golden README quirks 1, 2, 4, 8, 11): at the hooked attn1
 * sites, the hidden states attn1 receives (norm1's output, [B, HW, C]) are edited before Q, K and V, steered per
 * call by graph inputs:
 *
 *   e4e_mode         int64 [1]   0 off | 1 structure copy | 2 semantic matching | 3 V injection (values only)
 *   e4e_slots        int64 [6]   batch rows: [matchOut, matchStyle, copyOut, copySource, vOut, vStyle]
 *   e4e_mask_struct  float [Hm, Wm]  structure mask at image size (all ones = no mask)
 *   e4e_mask_app     float [Hm, Wm]  appearance mask at image size
 *   e4e_forced.<site> int64 [N] or [0]: forced matches (token -> style token, < 0 keeps the token); [0] = argmax
 *
 * and it outputs, per site, `e4e_match.<site>` int64 [N]: the style token each out token took (-1 = skipped by the
 * mask, -2 = no matching in this call). The slots are inputs so that the caller names the batch layout once
 * (transfer/slots.ts): the official CFG batch of 6 matches row 3 from row 4 and copies row 2 into row 0.
 *
 * Matching, for out token p: m(p) = argmax_q cos(F_out[p] * mS[p], F_style[q] * mA[q]) (first maximum on ties), then
 * F_out[p] <- F_style[m(p)] (the UNMASKED style feature); out tokens whose masked feature is all zero keep theirs.
 * One [N, C] x [C, N] product and one ArgMax per site: the N x N similarity exists once, not per head or batch row.
 */
import { ModelBuildError } from '../../errors.js';
import { GraphBuilder, Scope, type Value } from '../../onnx/graph-builder.js';
import {
  abs, argMax, concat, constFloat, constInt64, div, equal, gather, greater, identity, ifElse, less, matMul, max,
  mul, reduceMax, reduceSum, reshape, resizeBilinear, shape, slice, sqrt, transpose, unsqueeze, where,
} from '../../onnx/ops.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import type { Attn1Edit, Attn1Hook, Attn1Site } from './hook.js';

export const E4E_MODE = { off: 0, structCopy: 1, match: 2, vInjection: 3 } as const;
export type E4EMode = keyof typeof E4E_MODE;

export const E4E_INPUT = {
  mode: 'e4e_mode',
  slots: 'e4e_slots',
  maskStruct: 'e4e_mask_struct',
  maskApp: 'e4e_mask_app',
  forced: (site: string): string => `e4e_forced.${site}`,
} as const;

export const E4E_OUTPUT = {
  match: (site: string): string => `e4e_match.${site}`,
} as const;

/** Index of each slot in the `e4e_slots` input. */
export const SLOT_INDEX = { matchOut: 0, matchStyle: 1, copyOut: 2, copySource: 3, vOut: 4, vStyle: 5 } as const;

/** F.normalize's epsilon: x / max(||x||, 1e-12). */
const NORMALIZE_EPS = 1e-12;

interface SharedInputs {
  mode: Value;
  slots: Value;
  maskStruct: Value;
  maskApp: Value;
}

/** The hook that puts the method at `sites` (diffusers attn1 module paths); other attn1s are left alone. */
export function featureInjectionHook(sites: readonly string[]): { hook: Attn1Hook; finish(allSites: readonly string[]): void } {
  let shared: SharedInputs | undefined;
  const done = new Set<string>();
  // The control inputs are declared once, on the graph of the first hooked site.
  const inputs = (g: GraphBuilder): SharedInputs => (shared ??= {
    mode: g.input(E4E_INPUT.mode, 'int64', [1]),
    slots: g.input(E4E_INPUT.slots, 'int64', [6]),
    maskStruct: g.input(E4E_INPUT.maskStruct, 'float32', ['mask_struct_height', 'mask_struct_width']),
    maskApp: g.input(E4E_INPUT.maskApp, 'float32', ['mask_app_height', 'mask_app_width']),
  });
  const hook: Attn1Hook = (scope, site, hidden) => {
    if (!sites.includes(site.modulePath)) return { qk: hidden, v: hidden };
    done.add(site.modulePath);
    return buildInjection(scope.sub('e4e'), site, hidden, inputs(scope.g));
  };
  const finish = (allSites: readonly string[]): void => {
    const unknown = sites.filter((s) => !allSites.includes(s));
    if (unknown.length > 0) throw new ModelBuildError(`feature injection: no attn1 at ${unknown.join(', ')} (attn1 sites: ${allSites.join(', ')})`);
    const missed = sites.filter((s) => !done.has(s));
    if (missed.length > 0) throw new ModelBuildError(`feature injection: sites never reached while building: ${missed.join(', ')}`);
  };
  return { hook, finish };
}

function row(s: Scope, x: Value, slots: Value, slot: keyof typeof SLOT_INDEX): Value {
  const index = gather(s, slots, constInt64(s.g, SLOT_INDEX[slot]), 0, { name: `Gather_slot_${slot}` }); // [] int64
  return gather(s, x, index, 0, { name: `Gather_${slot}` }); // [N, C]
}

/** x[slot] <- replacement, as a new tensor (ScatterND on the batch axis). */
function replaceRow(s: Scope, x: Value, slots: Value, slot: keyof typeof SLOT_INDEX, replacement: Value): Value {
  const index = slice(s, slots, { starts: [SLOT_INDEX[slot]], ends: [SLOT_INDEX[slot] + 1], axes: [0] }, { name: `Slice_slot_${slot}` }); // [1]
  const indices = unsqueeze(s, index, [0], { name: `Unsqueeze_slot_${slot}` }); // [1, 1]
  const updates = unsqueeze(s, replacement, [0], { name: `Unsqueeze_rows_${slot}` }); // [1, N, C]
  return s.op('ScatterND', [x, indices, updates], {}, { name: `ScatterND_${slot}` }); // [B, N, C]
}

/** A mask [Hm, Wm] resized bilinearly (align_corners false) to the token map, flattened to [N, 1]. */
function tokenMask(s: Scope, mask: Value, site: Attn1Site, name: string): Value {
  const m4 = unsqueeze(s, mask, [0, 1], { name: `Unsqueeze_${name}` }); // [1, 1, Hm, Wm]
  const sizes = concat(s, [constInt64(s.g, [1, 1]), site.height, site.width], 0, { name: `Concat_size_${name}` }); // [4]
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
function matchIndices(s: Scope, site: Attn1Site, x: Value, inputs: SharedInputs & { forced: Value }): { index: Value; valid: Value } {
  const g = s.g;
  const forced = inputs.forced;
  const isForced = greater(s, reshape(s, s.op('Size', [forced]), [], { name: 'Reshape_size' }), constInt64(g, 0), { name: 'Greater_forced' }); // []

  const thenG = g.subgraph(`${s.path}/forced`);
  const ts = new Scope(thenG, `${s.path}/forced`);
  thenG.output(identity(ts, forced), `${s.path}/forced/index`, 'int64', ['N']);
  thenG.output(ts.op('Not', [less(ts, forced, constInt64(g, 0))]), `${s.path}/forced/valid`, 'bool', ['N']);

  const elseG = g.subgraph(`${s.path}/argmax`);
  const es = new Scope(elseG, `${s.path}/argmax`);
  const out = row(es, x, inputs.slots, 'matchOut'); // [N, C]
  const style = row(es, x, inputs.slots, 'matchStyle'); // [N, C]
  const outMasked = mul(es, out, tokenMask(es, inputs.maskStruct, site, 'mask_struct'), { name: 'Mul_mask_struct' }); // [N, C]
  const styleMasked = mul(es, style, tokenMask(es, inputs.maskApp, site, 'mask_app'), { name: 'Mul_mask_app' }); // [N, C]
  const nonzero = greater(es, reduceMax(es, abs(es, outMasked), [1], false), constFloat(g, 0)); // [N] bool
  const sim = matMul(es, l2normalize(es, outMasked, 'out'), transpose(es, l2normalize(es, styleMasked, 'style'), [1, 0]), { name: 'MatMul_cosine' }); // [N, N]
  elseG.output(argMax(es, sim, 1, false), `${s.path}/argmax/index`, 'int64', ['N']); // [N]
  elseG.output(identity(es, nonzero), `${s.path}/argmax/valid`, 'bool', ['N']);

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
  return s.op('ConstantOfShape', [n], { value: { tensor: { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(value)) } } }, { name: `ConstantOfShape_${name}` }); // [N]
}

/**
 *   mode ─ If(mode == off) ── (x, x, -2)
 *          else If(mode == structCopy) ── (x[copyOut] <- x[copySource], same, -2)
 *          else matching ── mode == match: (x[matchOut] <- style rows, same, idx)
 *                           mode == vInjection: (x, x[vOut] <- x[vStyle] rows, idx)
 */
function buildInjection(scope: WeightScope, site: Attn1Site, x: Value, inputs: SharedInputs): Attn1Edit {
  const g = scope.g;
  const s: Scope = scope;
  const modeIs = (mode: number, name: string): Value => reshape(s, equal(s, inputs.mode, constInt64(g, [mode]), { name: `Equal_${name}` }), [], { name: `Reshape_${name}` });

  const offG = g.subgraph(`${s.path}/off`);
  const offS = new Scope(offG, `${s.path}/off`);
  offG.output(identity(offS, x, { name: 'Identity_qk' }), `${s.path}/off/qk`, 'float32', ['B', 'N', site.channels]);
  offG.output(identity(offS, x, { name: 'Identity_v' }), `${s.path}/off/v`, 'float32', ['B', 'N', site.channels]);
  offG.output(fill(offS, x, -2, 'none'), `${s.path}/off/index`, 'int64', ['N']);

  const onG = g.subgraph(`${s.path}/on`);
  const onS = new Scope(onG, `${s.path}/on`);
  const copyG = onG.subgraph(`${s.path}/copy`);
  const copyS = new Scope(copyG, `${s.path}/copy`);
  const copied = replaceRow(copyS, x, inputs.slots, 'copyOut', row(copyS, x, inputs.slots, 'copySource'));
  copyG.output(identity(copyS, copied, { name: 'Identity_qk' }), `${s.path}/copy/qk`, 'float32', ['B', 'N', site.channels]);
  copyG.output(identity(copyS, copied, { name: 'Identity_v' }), `${s.path}/copy/v`, 'float32', ['B', 'N', site.channels]);
  copyG.output(fill(copyS, x, -2, 'none'), `${s.path}/copy/index`, 'int64', ['N']);

  const matchG = onG.subgraph(`${s.path}/match`);
  const matchS = new Scope(matchG, `${s.path}/match`);
  const forced = g.input(E4E_INPUT.forced(site.modulePath), 'int64', [`forced_${site.modulePath}`]);
  const { index, valid } = matchIndices(matchS, site, x, { ...inputs, forced });
  const chosen = where(matchS, valid, index, constInt64(g, -1), { name: 'Where_chosen' }); // [N]
  const isV = modeIs(E4E_MODE.vInjection, 'v_injection');
  const matchedQk = replaceRow(matchS, x, inputs.slots, 'matchOut',
    pickRows(matchS, row(matchS, x, inputs.slots, 'matchOut'), row(matchS, x, inputs.slots, 'matchStyle'), index, valid, 'match'));
  const matchedV = replaceRow(matchS, x, inputs.slots, 'vOut',
    pickRows(matchS, row(matchS, x, inputs.slots, 'vOut'), row(matchS, x, inputs.slots, 'vStyle'), index, valid, 'v'));
  matchG.output(where(matchS, isV, x, matchedQk, { name: 'Where_qk' }), `${s.path}/match/qk`, 'float32', ['B', 'N', site.channels]);
  matchG.output(where(matchS, isV, matchedV, matchedQk, { name: 'Where_v' }), `${s.path}/match/v`, 'float32', ['B', 'N', site.channels]);
  matchG.output(identity(matchS, chosen, { name: 'Identity_index' }), `${s.path}/match/index`, 'int64', ['N']);

  const [cqk, cv, ci] = ifElse(onS, modeIs(E4E_MODE.structCopy, 'copy'), copyG, matchG, 3, { name: 'If_copy' });
  onG.output(identity(onS, cqk!, { name: 'Identity_qk' }), `${s.path}/on/qk`, 'float32', ['B', 'N', site.channels]);
  onG.output(identity(onS, cv!, { name: 'Identity_v' }), `${s.path}/on/v`, 'float32', ['B', 'N', site.channels]);
  onG.output(identity(onS, ci!, { name: 'Identity_index' }), `${s.path}/on/index`, 'int64', ['N']);

  const [qk, v, matchIndex] = ifElse(s, modeIs(E4E_MODE.off, 'off'), offG, onG, 3, { name: 'If_mode' });
  g.output(matchIndex!, E4E_OUTPUT.match(site.modulePath), 'int64', [`tokens_${site.modulePath}`]);
  return { qk: qk!, v: v! };
}

