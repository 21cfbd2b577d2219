/**
 * The UNet side of self-segmentation: which attention modules give the maps, and a processor plan that adds them
 * as graph outputs to any method's plan.
 *
 * The reference's Segmentor keeps, by token-map side, the LAST attention call of each kind it sees in the UNet call
 * where it records (utils/segmentation.py `update_attention`): self-attention at SD 64x64 and 32x32, cross-attention
 * at 32x32 and 16x16. In resolution levels (0 = the latent map) that is, in execution order:
 *
 *   self_attention_64   last attn1 at level 0   (SD: up_blocks.3.attentions.2.transformer_blocks.0.attn1)
 *   self_attention_32   last attn1 at level 1   (SD: up_blocks.2.attentions.2.transformer_blocks.0.attn1)
 *   cross_attention_64  last attn2 at level 1   (SD: up_blocks.2.attentions.2.transformer_blocks.0.attn2)
 *   cross_attention_32  last attn2 at level 2   (SD: up_blocks.1.attentions.2.transformer_blocks.0.attn2)
 *
 * At those four modules the plan's processor also writes `segmentation.<map>`: the head-averaged attention
 * probabilities softmax(q k^T / sqrt(d)) of the batch rows listed in the int64 input `segmentation_rows` (after the
 * base processor's editProjections), [R, queries, keys]; with no rows (the neutral feed) the output is an empty
 * [0, 0, 0] and nothing is computed. The module's own output is untouched (the base processor's, or stock
 * attention), so recording changes no result. Large maps are computed in query chunks (at most 256 MiB of scores
 * for two rows at the model's native size).
 */
import type { UNetConfig } from '../../../config/unet-config.js';
import { ModelBuildError } from '../../../errors.js';
import { Scope, type Value } from '../../../onnx/graph-builder.js';
import { concat, constInt64, div, gather, greater, identity, ifElse, mul, reduceMean, reshape, shape, slice } from '../../../onnx/ops.js';
import type { AttentionProcessor, AttentionSite, ProcessorContext, ProcessorInput, ProcessorPlan, QKV } from '../../../models/unet/attention-processor.js';
import { explicitAttention } from '../../../models/nn/scaled-dot-product-attention.js';

export type SegmentationMapName = 'self_attention_64' | 'self_attention_32' | 'cross_attention_64' | 'cross_attention_32';

/** The maps the self-segmentation needs: the kind and resolution level of the module each comes from. */
export const SEGMENTATION_MAPS: Readonly<Record<SegmentationMapName, { readonly kind: 'self' | 'cross'; readonly level: number }>> = Object.freeze({
  self_attention_64: { kind: 'self', level: 0 },
  self_attention_32: { kind: 'self', level: 1 },
  cross_attention_64: { kind: 'cross', level: 1 },
  cross_attention_32: { kind: 'cross', level: 2 },
});

export const SEGMENTATION_MAP_NAMES = Object.keys(SEGMENTATION_MAPS) as SegmentationMapName[];

/** The int64 [R] graph input: batch rows whose maps are written (empty: no recording). */
export const SEGMENTATION_ROWS_INPUT = 'segmentation_rows';

/** The graph output of a map. */
export function segmentationOutput(map: SegmentationMapName): string {
  return `segmentation.${map}`;
}

const ROWS_INPUT: ProcessorInput = {
  name: SEGMENTATION_ROWS_INPUT,
  dtype: 'int64',
  dims: ['segmentation_rows'],
  neutral: { dtype: 'int64', dims: [0], data: new BigInt64Array(0) },
};

/** Most bytes of one chunk's scores (two rows, the native token count). */
const SCORES_BUDGET = 256 * 2 ** 20;
const MAX_CHUNKS = 64;
const DEFAULT_SAMPLE_SIZE = 64;

interface SiteSpec {
  readonly path: string;
  readonly kind: 'self' | 'cross';
  readonly level: number;
}

/** Every attention module of a UNet built from `config`, in execution order (down, mid, up). */
function attentionModules(config: UNetConfig): SiteSpec[] {
  const n = config.blockOutChannels.length;
  const out: SiteSpec[] = [];
  const block = (prefix: string, attentions: number, transformers: number, level: number): void => {
    for (let j = 0; j < attentions; j++)
      for (let k = 0; k < transformers; k++)
        for (const [attn, kind] of [
          ['attn1', 'self'],
          ['attn2', 'cross'],
        ] as const)
          out.push({ path: `${prefix}.attentions.${j}.transformer_blocks.${k}.${attn}`, kind, level });
  };
  config.downBlockTypes.forEach((type, i) => {
    if (type === 'CrossAttnDownBlock2D') block(`down_blocks.${i}`, config.layersPerBlock, config.transformerLayersPerBlock[i]!, i);
  });
  block('mid_block', 1, config.transformerLayersPerBlock[n - 1]!, n - 1);
  config.upBlockTypes.forEach((type, i) => {
    if (type === 'CrossAttnUpBlock2D') block(`up_blocks.${i}`, config.layersPerBlock + 1, config.transformerLayersPerBlock[n - 1 - i]!, n - 1 - i);
  });
  return out;
}

/** The module of each map in a UNet built from `config` (the last of its kind at its level). */
export function segmentationSites(config: UNetConfig): Readonly<Record<SegmentationMapName, string>> {
  const modules = attentionModules(config);
  const sites = {} as Record<SegmentationMapName, string>;
  for (const name of SEGMENTATION_MAP_NAMES) {
    const { kind, level } = SEGMENTATION_MAPS[name];
    const last = modules.filter((m) => m.kind === kind && m.level === level).pop();
    if (last === undefined) {
      throw new ModelBuildError(`self-segmentation needs a ${kind}-attention module at resolution level ${level} for ${name}; this UNet has none there`, {
        hint: 'self-segmentation needs attention at the latent map and at 1/2 and 1/4 of it (SD-1/SD-2 layouts have them)',
      });
    }
    sites[name] = last.path;
  }
  return Object.freeze(sites);
}

/** Query chunks of a map's scores at the native token count. */
function chunksFor(site: AttentionSite, tokens: number): number {
  const keys = site.kind === 'self' ? tokens : 77;
  return Math.min(MAX_CHUNKS, Math.max(1, Math.ceil((4 * 2 * site.heads * tokens * keys) / SCORES_BUDGET)));
}

/**
 *   rows ─ Gather(q), Gather(k), Gather(v) ─ per query chunk: softmax(q k^T / sqrt(d)) ─ ReduceMean(heads) ─ Concat
 *   (only when rows is non-empty; else an empty [0, 0, 0])
 */
function headAveragedMaps(ctx: ProcessorContext, qkv: QKV, chunks: number): Value {
  const s = ctx.scope.sub('segmentation');
  const g = s.g;
  const rows = ctx.input(SEGMENTATION_ROWS_INPUT);
  const count = shape(s, rows, { name: 'Shape_rows' }); // [1]
  const any = reshape(s, greater(s, count, constInt64(g, [0]), { name: 'Greater_rows' }), [], { name: 'Reshape_rows' });
  const { heads, channels } = ctx.site;
  const thenG = g.subgraph(`${s.path}/record`);
  const ts = new Scope(thenG, `${s.path}/record`);
  const pick = (x: Value, name: string): Value => gather(ts, x, rows, 0, { name: `Gather_${name}` }); // [R, S|T, C]
  const q = pick(qkv.q, 'q');
  const k = pick(qkv.k, 'k');
  const v = pick(qkv.v, 'v');
  const seq = slice(ts, shape(ts, q, { name: 'Shape_q' }), { starts: [1], ends: [2], axes: [0] }, { name: 'Slice_queries' }); // [1]
  const bound = (i: number): Value =>
    div(ts, mul(ts, seq, constInt64(g, [i]), { name: `Mul_bound_${i}` }), constInt64(g, [chunks]), { name: `Div_bound_${i}` });
  const parts: Value[] = [];
  for (let i = 0; i < chunks; i++) {
    const cs = ts.child(`chunk_${i}`);
    const qi = chunks === 1 ? q : slice(ts, q, { starts: bound(i), ends: bound(i + 1), axes: [1] }, { name: `Slice_chunk_${i}` }); // [R, S_i, C]
    const { probs } = explicitAttention(cs, { q: qi, k, v }, heads, channels / heads); // [R, H, S_i, T]
    parts.push(reduceMean(cs, probs, [1], false)); // [R, S_i, T]
  }
  const maps = parts.length === 1 ? identity(ts, parts[0]!) : concat(ts, parts, 1, { name: 'Concat_chunks' }); // [R, S, T]
  thenG.output(maps, `${s.path}/record/maps`, 'float32', ['segmentation_rows', `queries_${s.path}`, `keys_${s.path}`]);
  const elseG = g.subgraph(`${s.path}/skip`);
  const empty = g.constant({ dtype: 'float32', dims: [0, 0, 0], data: new Float32Array(0) });
  elseG.output(identity(new Scope(elseG, `${s.path}/skip`), empty), `${s.path}/skip/maps`, 'float32', [0, 0, 0]);
  return ifElse(s, any, thenG, elseG, 1, { name: 'If_record' })[0]!;
}

/** `base` (or stock attention) plus the map output of `map`. */
function recordingProcessor(base: AttentionProcessor | undefined, map: SegmentationMapName, tokens: number): AttentionProcessor {
  const output = segmentationOutput(map);
  const processor: AttentionProcessor = {
    inputs: [...(base?.inputs ?? []).filter((i) => i.name !== SEGMENTATION_ROWS_INPUT), ROWS_INPUT],
    outputs: [...(base?.outputs ?? []), { name: output, dtype: 'float32', dims: ['segmentation_rows', `${output}_queries`, `${output}_keys`] }],
    editProjections(ctx, qkv) {
      const edited = base?.editProjections !== undefined ? base.editProjections(ctx, qkv) : qkv;
      ctx.output(output, headAveragedMaps(ctx, edited, chunksFor(ctx.site, tokens)));
      return edited;
    },
  };
  return {
    ...processor,
    ...(base?.editSources === undefined ? {} : { editSources: base.editSources.bind(base) }),
    ...(base?.attend === undefined ? {} : { attend: base.attend.bind(base) }),
  };
}

/** `plan` with the four segmentation maps as extra outputs (their modules get a processor even if `plan` gives none). */
export function withSegmentationMaps(plan: ProcessorPlan | undefined, config: UNetConfig): ProcessorPlan {
  const sites = segmentationSites(config);
  const byPath = new Map(SEGMENTATION_MAP_NAMES.map((name) => [sites[name], name]));
  const sample = config.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  return {
    choose(site) {
      const base = plan?.choose(site);
      const map = byPath.get(site.modulePath);
      if (map === undefined) return base;
      const side = Math.ceil(sample / 2 ** site.level);
      return recordingProcessor(base, map, side * side);
    },
    required: [...new Set([...(plan?.required ?? []), ...byPath.keys()])],
  };
}
