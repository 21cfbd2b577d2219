/**
 * Group `segment`: Cross-Image Attention's self-segmentation from the recorded head-averaged attention maps (the
 * group's inputs): the four KMeans fits with their k-means++ / Lloyd trace, the cluster-to-noun scoring and the
 * masks (src/methods/shared/self-segmentation/).
 *
 * Inputs: `segment.self_attention_<32|64>.<style|struct>` ([N, N], what KMeans clusters),
 * `segment.cross_attention_<32|64>` ([B, heads, N, T], averaged over heads here, as the reference's
 * `cross_attn[row].mean(dim=0)`), the nouns and object nouns of io.json `segmentation`, the KMeans parameters of
 * `segmentation.kmeans_<fit>.params`. Diagnostic check: the same maps recorded from our UNet (the no-swap pass of
 * the recording iteration, i.e. the stock FreeU UNet on the latents entering it) against the recorded inputs; a
 * note says how many mask pixels the whole natural path (our maps -> masks) changes.
 */
import { GoldenError } from '../../errors.js';
import { reshape, sliceFirst, type Tensor } from '../../tensor/tensor.js';
import { compareTensors } from '../compare.js';
import {
  SEGMENTATION_FIT_ORDER,
  selfSegmentation,
  unetSegmentationMaps,
  type AttentionMap,
  type ImageSegmentationMaps,
  type SegmentationFit,
  type SegmentationMapName,
  type SelfSegmentationOptions,
} from '../engine.js';
import type { GoldenContext } from '../runner.js';

/** The reference's batch rows (constants.py: OUT_INDEX 0, STYLE_INDEX 1, STRUCT_INDEX 2). */
const ROWS = { style: 1, struct: 2 } as const;

const int64 = (dims: number[], values: ArrayLike<number>): Tensor<'int64'> => ({
  dtype: 'int64',
  dims,
  data: BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
});
const float64 = (dims: number[], values: ArrayLike<number>): Tensor<'float64'> => ({ dtype: 'float64', dims, data: Float64Array.from(values) });
const float32 = (dims: number[], values: ArrayLike<number>): Tensor<'float32'> => ({ dtype: 'float32', dims, data: Float32Array.from(values) });

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function segmentationMeta(ctx: GoldenContext): Record<string, unknown> {
  const meta = record(ctx.golden.meta['segmentation']);
  if (meta === undefined) throw new GoldenError(`${ctx.golden.dir}: io.json has no 'segmentation' object (nouns, object nouns, KMeans parameters)`);
  return meta;
}

function nounsOf(ctx: GoldenContext): { nouns: { index: number; word: string }[]; objectNouns: string[] } {
  const meta = segmentationMeta(ctx);
  const nouns: unknown = meta['nouns'];
  const objects: unknown = meta['object_nouns'];
  const isNoun = (n: unknown): n is [number, string] => Array.isArray(n) && n.length === 2 && Number.isInteger(n[0]) && typeof n[1] === 'string';
  if (!Array.isArray(nouns) || !nouns.every(isNoun)) throw new GoldenError(`${ctx.golden.dir}: io.json segmentation.nouns must be [[word index, word], ...]`);
  if (!Array.isArray(objects) || !objects.every((o): o is string => typeof o === 'string'))
    throw new GoldenError(`${ctx.golden.dir}: io.json segmentation.object_nouns must be a list of words`);
  return { nouns: nouns.map(([index, word]) => ({ index, word })), objectNouns: objects };
}

/** n_clusters, n_init and the OpenMP threads of a fit (the reference's values where io.json leaves them out: 5, 10, 2). */
function kmeansParams(ctx: GoldenContext): { numSegments: number; nInit: number; nThreads: number } {
  const fit = record(segmentationMeta(ctx)['kmeans_style_32']);
  const params = record(fit?.['params']);
  const num = (v: unknown, fallback: number, what: string): number => {
    if (v === undefined) {
      ctx.note(`io.json gives no ${what}: the reference's ${fallback}`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new GoldenError(`${ctx.golden.dir}: io.json segmentation.kmeans_style_32 ${what} must be a positive integer`);
    return v;
  };
  return {
    numSegments: num(params?.['n_clusters'], 5, 'n_clusters'),
    nInit: num(params?.['n_init'], 10, 'n_init'),
    nThreads: num(fit?.['n_threads'], 2, 'n_threads'),
  };
}

/** torch's `maps[row].mean(dim=0)` of [B, heads, N, T]: heads added in order in float32, then divided. */
function headMean(t: Tensor, row: number): Float32Array {
  const [, heads, n, keys] = t.dims as [number, number, number, number];
  const size = n * keys;
  const out = new Float32Array(size);
  const data = t.data as Float32Array;
  for (let h = 0; h < heads; h++) {
    const o = (row * heads + h) * size;
    for (let i = 0; i < size; i++) out[i] = Math.fround(out[i]! + data[o + i]!);
  }
  for (let i = 0; i < size; i++) out[i] = Math.fround(out[i]! / heads);
  return out;
}

function squareMap(name: string, data: Float32Array, n: number, keys: number): AttentionMap {
  const side = Math.round(Math.sqrt(n));
  if (side * side !== n) throw new GoldenError(`${name}: ${n} tokens is not a square map (the reference takes res = sqrt(N))`);
  return { data, height: side, width: side, keys };
}

function goldenMaps(ctx: GoldenContext, image: 'style' | 'struct'): ImageSegmentationMaps {
  const out = {} as Record<SegmentationMapName, AttentionMap>;
  for (const res of ['32', '64'] as const) {
    const selfName = `segment.self_attention_${res}.${image}`;
    const self = ctx.golden.get(selfName);
    if (self.dtype !== 'float32' || self.dims.length !== 2) throw new GoldenError(`${selfName}: expected float32 [N, N]`);
    out[`self_attention_${res}`] = squareMap(selfName, self.data as Float32Array, self.dims[0]!, self.dims[1]!);
    const crossName = `segment.cross_attention_${res}`;
    const cross = ctx.golden.get(crossName);
    if (cross.dtype !== 'float32' || cross.dims.length !== 4) throw new GoldenError(`${crossName}: expected float32 [B, heads, N, T]`);
    out[`cross_attention_${res}`] = squareMap(crossName, headMean(cross, ROWS[image]), cross.dims[2]!, cross.dims[3]!);
  }
  return out;
}

/** The golden's tensors of one fit. */
function fitTensors(name: string, fit: SegmentationFit, k: number): Record<string, Tensor> {
  const km = fit.kmeans;
  const inits = km.inits;
  const n = km.labels.length;
  const f = km.xMean.length;
  const trials = km.nLocalTrials;
  const steps = Math.max(...inits.map((i) => i.iterLabels.length));
  const p = `segment.kmeans.${name}.`;
  const c = `segment.cluster2noun.${name}.`;
  const m = fit.nouns.scores.length / k;
  const iterLabels = new Uint8Array(inits.length * steps * n).fill(255);
  const shifts = new Float64Array(inits.length * steps).fill(-1);
  inits.forEach((init, i) => {
    init.iterLabels.forEach((labels, s) => iterLabels.set(labels, (i * steps + s) * n));
    init.centerShiftTot.forEach((v, s) => (shifts[i * steps + s] = v));
  });
  const flat = <T>(get: (i: (typeof inits)[number]) => ArrayLike<T>): T[] => inits.flatMap((i) => Array.from(get(i)));
  return {
    [`${p}labels`]: { dtype: 'int32', dims: [n], data: Int32Array.from(km.labels) },
    [`${p}cluster_centers`]: float32([k, f], km.clusterCenters),
    [`${p}inertia`]: float64([1], [km.inertia]),
    [`${p}best_init`]: int64([1], [km.bestInit]),
    [`${p}x_mean`]: float32([f], km.xMean),
    [`${p}tol`]: float64([1], [km.tol]),
    [`${p}init.first_center`]: int64(
      [inits.length],
      inits.map((i) => i.firstCenter),
    ),
    [`${p}init.uniforms`]: float64(
      [inits.length, k - 1, trials],
      flat((i) => i.uniforms),
    ),
    [`${p}init.candidate_ids`]: int64(
      [inits.length, k - 1, trials],
      flat((i) => i.candidateIds),
    ),
    [`${p}init.candidates_pot`]: float32(
      [inits.length, k - 1, trials],
      flat((i) => i.candidatesPot),
    ),
    [`${p}init.current_pot`]: float32(
      [inits.length, k],
      flat((i) => i.currentPot),
    ),
    [`${p}init.indices`]: int64(
      [inits.length, k],
      flat((i) => i.indices),
    ),
    [`${p}init.n_iter`]: int64(
      [inits.length],
      inits.map((i) => i.nIter),
    ),
    [`${p}init.inertia`]: float64(
      [inits.length],
      inits.map((i) => i.inertia),
    ),
    [`${p}init.labels`]: { dtype: 'int32', dims: [inits.length, n], data: Int32Array.from(flat((i) => i.labels)) },
    [`${p}init.centers`]: float32(
      [inits.length, k, f],
      flat((i) => i.centers),
    ),
    [`${p}init.iter_labels`]: { dtype: 'uint8', dims: [inits.length, steps, n], data: iterLabels },
    [`${p}init.center_shift_tot`]: float64([inits.length, steps], shifts),
    [`${c}noun_maps`]: float32([fit.nouns.nounMapSize.height, fit.nouns.nounMapSize.width, m], fit.nouns.nounMaps),
    [`${c}normalized_noun_maps`]: float32([fit.mask.height, fit.mask.width, m], fit.nouns.normalizedNounMaps),
    [`${c}scores`]: float64([k, m], fit.nouns.scores),
    [`${c}threshold`]: float64([1], [fit.nouns.threshold]),
    [`${c}assignment`]: int64([k], fit.nouns.assignment),
    [`segment.mask_${name}`]: { dtype: 'uint8', dims: [fit.mask.height, fit.mask.width], data: Uint8Array.from(fit.mask.data) },
  };
}

/** Diagnostic: our UNet's maps at the recording call against the recorded inputs. */
async function checkRecordedMaps(ctx: GoldenContext, options: SelfSegmentationOptions): Promise<void> {
  const { golden } = ctx;
  const iteration = segmentationMeta(ctx)['maps_recorded_at_iteration'];
  const needed = ['cia_transfer.latents', 'cia_transfer.init_latents', 'cia_transfer.timesteps', 'text.last_hidden_state'];
  const missing = needed.filter((n) => !golden.has(n));
  if (typeof iteration !== 'number' || missing.length > 0) {
    ctx.note(`maps from our UNet not checked: io.json lacks ${typeof iteration !== 'number' ? 'segmentation.maps_recorded_at_iteration' : missing.join(', ')}`);
    return;
  }
  const latents = iteration === 0 ? golden.get('cia_transfer.init_latents') : sliceFirst(golden.get('cia_transfer.latents'), iteration - 1);
  const timestep = Number((golden.get('cia_transfer.timesteps').data as BigInt64Array)[iteration]);
  const text = golden.get('text.last_hidden_state') as Tensor<'float32'>; // [prompt, '']
  const cond = sliceFirst(text, 0).data;
  const batch = latents.dims[0]!;
  const context: Tensor<'float32'> = { dtype: 'float32', dims: [batch, ...text.dims.slice(1)], data: new Float32Array(batch * cond.length) };
  for (let b = 0; b < batch; b++) context.data.set(cond, b * cond.length);
  const rows = [0, 1, 2].filter((r) => r < batch);
  const maps = await unetSegmentationMaps(ctx.model(), { sample: latents as Tensor<'float32'>, timestep, encoderHiddenStates: context, rows });
  for (const image of ['style', 'struct'] as const) {
    for (const res of ['32', '64'] as const) {
      const ours = maps[`self_attention_${res}`];
      const [, s, keys] = ours.dims as [number, number, number];
      const name = `segment.self_attention_${res}.${image}`;
      const mine = reshape(sliceFirst(ours, rows.indexOf(ROWS[image])), [s, keys]);
      ctx.check(compareTensors(mine, golden.get(name), { ...golden.tolerance(name), label: `${name} from our UNet (iteration ${iteration}, t=${timestep})` }));
    }
  }
  for (const res of ['32', '64'] as const) {
    const name = `segment.cross_attention_${res}`;
    const expected = golden.get(name);
    const ours = maps[`cross_attention_${res}`];
    for (const image of ['style', 'struct'] as const) {
      const mine = reshape(sliceFirst(ours, rows.indexOf(ROWS[image])), expected.dims.slice(2));
      const want: Tensor = { dtype: 'float32', dims: expected.dims.slice(2), data: headMean(expected, ROWS[image]) };
      ctx.check(compareTensors(mine, want, { ...golden.tolerance(name), label: `${name}[${ROWS[image]}].mean(heads) from our UNet` }));
    }
  }
  // The whole path users run: masks from the maps our UNet recorded. Reported, not checked: the k-means and
  // threshold decisions see our float32 rounding of the maps, and io.json's margins say how close they are.
  const image = (row: number): ImageSegmentationMaps => {
    const out = {} as Record<SegmentationMapName, AttentionMap>;
    for (const [name, t] of Object.entries(maps) as [SegmentationMapName, Tensor<'float32'>][]) {
      const [, s, keys] = t.dims as [number, number, number];
      out[name] = squareMap(name, sliceFirst(t, rows.indexOf(row)).data, s, keys);
    }
    return out;
  };
  const natural = selfSegmentation({ style: image(ROWS.style), struct: image(ROWS.struct) }, options);
  const differing = SEGMENTATION_FIT_ORDER.map((fit) => {
    const expected = golden.get(`segment.mask_${fit.name}`).data as Uint8Array;
    const mask = natural.fits[fit.name].mask.data;
    return `${fit.name} ${mask.reduce((n, v, i) => n + (v === expected[i] ? 0 : 1), 0)}/${mask.length}`;
  });
  ctx.note(`masks from our UNet's maps, pixels differing from the golden masks: ${differing.join(', ')}`);
}

export async function runSegmentGroup(ctx: GoldenContext): Promise<Record<string, Tensor>> {
  const options: SelfSegmentationOptions = { ...nounsOf(ctx), ...kmeansParams(ctx) };
  const params = { numSegments: options.numSegments ?? 5, nInit: options.nInit ?? 10 };
  const started = performance.now();
  const result = selfSegmentation({ style: goldenMaps(ctx, 'style'), struct: goldenMaps(ctx, 'struct') }, options);
  ctx.note(`self-segmentation (4 KMeans fits of ${params.nInit} inits, cluster2noun, masks): ${((performance.now() - started) / 1000).toFixed(2)} s`);
  const out: Record<string, Tensor> = {};
  for (const fit of SEGMENTATION_FIT_ORDER) Object.assign(out, fitTensors(fit.name, result.fits[fit.name], params.numSegments));
  if (ctx.checks) await checkRecordedMaps(ctx, options);
  else ctx.note('diagnostic checks skipped: maps from our UNet not compared');
  return out;
}
