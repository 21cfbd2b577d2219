/**
 * Group `samhq`: the official SAM-HQ mask step of run.py, stage by stage, through the library's SAM code.
 *
 * io.json `runs.<run>` names each image run (set_image size, prompts with their multimask_output / hq_token_only);
 * per run: the decoded PNG (`samhq.<run>.decoded`, or the decoded image of the run's source file) -> cv2 INTER_LINEAR
 * stretch (`resized`) -> ResizeLongestSide (`model_input_uint8`) -> Sam.preprocess (`model_input`) -> encoder
 * (`image_embeddings`, `interm_embeddings`); per prompt `samhq.<run>.<prompt>.*`: the model-frame prompts, the
 * prompt encoder, every decoder token, the selected low-res logits and score, the upscaled logits and the mask.
 *
 * Masks: a pixel io.json lists in `fragile_pixel_coords` (|golden logit| < ~1e-4) may flip in another float32
 * implementation; such a flip is accepted, with a note, only where our own |logit| is also below
 * FRAGILE_LOGIT_LIMIT. Any other differing pixel fails the comparison.
 */
import { GoldenError } from '../../errors.js';
import type { Raster } from '../../io/resample/raster.js';
import type { Tensor } from '../../tensor/tensor.js';
import { samPredict, samSetImage, samStretch, type SamGoldenEngine, type SamImageStages, type SegmentPrompt } from '../sam-engine.js';
import type { GoldenContext } from '../runner.js';

/** |logit| under which a flipped fragile pixel is accepted: io.json's fragility bound 1e-4 plus the logits' atol 1e-4. */
export const FRAGILE_LOGIT_LIMIT = 2e-4;

interface PromptSpec {
  box?: number[];
  point_coords?: number[][];
  point_labels?: number[];
  mask_input?: string;
  multimask_output?: boolean;
  hq_token_only?: boolean;
  fragile_pixel_coords?: number[][];
}

interface RunSpec {
  source?: string;
  set_image_WH?: [number, number];
  prompts?: Record<string, PromptSpec>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function runs(ctx: GoldenContext): Record<string, RunSpec> {
  const r = ctx.golden.meta['runs'];
  if (!isRecord(r)) throw new GoldenError(`${ctx.golden.dir}: io.json has no 'runs' object describing the SAM runs`);
  return r as Record<string, RunSpec>;
}

function toRaster(t: Tensor, name: string): Raster {
  if (t.dtype !== 'uint8' || t.dims.length !== 3 || t.dims[2] !== 3)
    throw new GoldenError(`${name}: expected a uint8 [H, W, 3] image, got ${t.dtype}[${t.dims.join(', ')}]`);
  return { width: t.dims[1]!, height: t.dims[0]!, channels: 3, data: t.data as Uint8Array };
}

function fromRaster(r: Raster): Tensor<'uint8'> {
  return { dtype: 'uint8', dims: [r.height, r.width, r.channels], data: r.data };
}

/** The decoded input of a run: its own `decoded` tensor, else the decoded tensor of the run whose image is the same file. */
function decodedOf(ctx: GoldenContext, run: string, all: Record<string, RunSpec>): Tensor {
  const own = `samhq.${run}.decoded`;
  if (ctx.golden.has(own)) return ctx.golden.get(own);
  const source = ctx.golden.tensors[`samhq.${run}.resized`]?.params?.['source'] ?? all[run]?.source;
  const file = typeof source === 'string' ? source.replace(/^images\//, '') : undefined;
  const images = isRecord(ctx.golden.meta['images']) ? (ctx.golden.meta['images'] as Record<string, { file?: string }>) : {};
  for (const [other, spec] of Object.entries(all)) {
    const name = `samhq.${other}.decoded`;
    const otherFile = (spec.source ?? images[other]?.file ?? '').replace(/^images\//, '');
    if (file !== undefined && otherFile === file && ctx.golden.has(name)) return ctx.golden.get(name);
  }
  throw new GoldenError(`samhq.${run}: no decoded input (neither ${own} nor a run with the same source ${JSON.stringify(source)})`);
}

/** The set_image size (W, H) of a run: the `resized` tensor's dsize param, else runs.<run>.set_image_WH. */
function stretchSize(ctx: GoldenContext, run: string, spec: RunSpec): [number, number] {
  const d = ctx.golden.tensors[`samhq.${run}.resized`]?.params?.['dsize_WH'] ?? spec.set_image_WH;
  if (!Array.isArray(d) || d.length !== 2) throw new GoldenError(`samhq.${run}: no set_image size (resized.params.dsize_WH or runs.${run}.set_image_WH)`);
  return [d[0] as number, d[1] as number];
}

/** The prompt as predict() got it: the case's input tensors where present, else io.json's prompt spec. */
function promptOf(ctx: GoldenContext, pre: string, spec: PromptSpec): SegmentPrompt {
  const g = ctx.golden;
  const boxData = g.has(`${pre}.input_box`) ? Array.from(g.get(`${pre}.input_box`).data as Float32Array) : spec.box;
  let points: { x: number; y: number; label: 0 | 1 }[] | undefined;
  const coords = g.has(`${pre}.input_points`) ? Array.from(g.get(`${pre}.input_points`).data as Float32Array) : spec.point_coords?.flat();
  const labels = g.has(`${pre}.input_labels`) ? Array.from(g.get(`${pre}.input_labels`).data as Int32Array) : spec.point_labels;
  if (coords !== undefined && labels !== undefined) points = labels.map((l, i) => ({ x: coords[2 * i]!, y: coords[2 * i + 1]!, label: l as 0 | 1 }));
  const maskInput = g.has(`${pre}.mask_input`) ? (g.get(`${pre}.mask_input`) as Tensor<'float32'>) : undefined;
  return {
    box: boxData === undefined ? undefined : (boxData as unknown as [number, number, number, number]),
    points,
    maskInput,
    multimaskOutput: spec.multimask_output ?? false,
    hqTokenOnly: spec.hq_token_only ?? true,
  };
}

const f32 = (dims: number[], data: Float32Array): Tensor<'float32'> => ({ dtype: 'float32', dims, data });

/** Accepts flips of io.json's fragile pixels where our logit is also near 0 (see the file comment). */
function acceptFragileFlips(ctx: GoldenContext, name: string, ours: Uint8Array, logits: Float32Array, width: number, fragile: readonly number[][]): void {
  if (!ctx.golden.has(name) || fragile.length === 0) return;
  const expected = ctx.golden.get(name).data as Uint8Array;
  for (const [y, x] of fragile) {
    const i = y! * width + x!;
    if (ours[i] !== expected[i] && Math.abs(logits[i]!) < FRAGILE_LOGIT_LIMIT) {
      ctx.note(`${name}: fragile pixel [${y}, ${x}] flipped (our logit ${logits[i]!.toExponential(2)}, listed in io.json fragile_pixel_coords): accepted`);
      ours[i] = expected[i]!;
    }
  }
}

async function runPrompt(
  ctx: GoldenContext,
  sam: SamGoldenEngine,
  image: SamImageStages,
  pre: string,
  spec: PromptSpec,
  out: Record<string, Tensor>,
): Promise<void> {
  const stages = await samPredict(sam, image.embedding, promptOf(ctx, pre, spec));
  const [h, w] = image.embedding.originalSize;
  out['samhq.dense_pe'] ??= stages.densePe;
  if (stages.box !== undefined) out[`${pre}.box`] = f32([1, 4], stages.box);
  if (stages.pointCoords !== undefined) {
    const n = stages.pointCoords.length / 2;
    out[`${pre}.point_coords`] = f32([1, n, 2], stages.pointCoords);
    const labels = ctx.golden.has(`${pre}.input_labels`)
      ? (ctx.golden.get(`${pre}.input_labels`).data as Int32Array)
      : Int32Array.from(spec.point_labels ?? []);
    out[`${pre}.point_labels`] = { dtype: 'int32', dims: [1, n], data: Int32Array.from(labels) };
  }
  out[`${pre}.sparse_embeddings`] = stages.sparseEmbeddings;
  out[`${pre}.dense_embeddings`] = stages.denseEmbeddings;
  out[`${pre}.decoder_masks_all`] = stages.masksAll;
  out[`${pre}.decoder_iou_all`] = stages.iouAll;
  const low = stages.lowResLogits;
  out[`${pre}.low_res_logits`] = f32(low.dims.slice(1), low.data);
  out[`${pre}.iou_predictions`] = f32([1], Float32Array.of(stages.score));
  out[`${pre}.upscaled_logits`] = f32([1, h, w], stages.upscaledLogits);
  const mask = Uint8Array.from(stages.mask);
  acceptFragileFlips(ctx, `${pre}.masks`, mask, stages.upscaledLogits, w, spec.fragile_pixel_coords ?? []);
  out[`${pre}.masks`] = { dtype: 'uint8', dims: [1, h, w], data: mask };
}

export async function runSamhqGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const out: Record<string, Tensor> = {};
  const all = runs(ctx);
  const sam = ctx.sam();
  for (const [run, spec] of Object.entries(all)) {
    try {
      const [w, h] = stretchSize(ctx, run, spec);
      const resized = samStretch(toRaster(decodedOf(ctx, run, all), `samhq.${run}.decoded`), w, h);
      out[`samhq.${run}.resized`] = fromRaster(resized);
      const image = await samSetImage(sam, resized);
      out[`samhq.${run}.model_input_uint8`] = fromRaster(image.modelInputUint8);
      out[`samhq.${run}.model_input`] = image.modelInput;
      out[`samhq.${run}.image_embeddings`] = image.imageEmbeddings;
      out[`samhq.${run}.interm_embeddings`] = image.intermEmbeddings;
      for (const [prompt, promptSpec] of Object.entries(spec.prompts ?? {})) {
        const pre = `samhq.${run}.${prompt}`;
        try {
          await runPrompt(ctx, sam, image, pre, promptSpec, out);
        } catch (error) {
          for (const name of ctx.outputs(group)) if (name.startsWith(`${pre}.`) && out[name] === undefined) ctx.fail(name, error);
        }
      }
    } catch (error) {
      for (const name of ctx.outputs(group)) if (name.startsWith(`samhq.${run}.`) && out[name] === undefined) ctx.fail(name, error);
    }
  }
  return out;
}
