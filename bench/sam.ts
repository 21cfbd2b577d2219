/**
 * The `sam` phase of `npm run bench`: SAM-HQ ViT-L on random weights of the real shapes (bench/sam-weights.ts),
 * the image encoder on one 1024x1024 input and the per-prompt decoder (prompt encoder, MaskDecoderHQ with the HQ
 * path, selection, postprocess to 512x512) on a box prompt. The FLOPs of both calls are counted by onnxruntime's
 * profiler as the count phase does (kept in flop-counts.json under the graph's cache key), as `sam_flop_counts`,
 * which rateFigures turns into GFLOP/s and ratios to the GEMM rate.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ORT_VERSION } from '../src/runtime/session.js';
import { SamModel, type SamDecoderPrompt, type SamImageFeatures } from '../src/runtime/sam-model.js';
import { samModelShapes } from '../src/models/sam/sam-configs.js';
import { openSamWeights } from '../src/models/sam/weights.js';
import { allFinite, log, maxRssGb, randn, round, timeCalls, type Args, type Figures } from './common.js';
import { PROFILE_OPTIMIZATION, profiledCounts, type FlopCount } from './flops.js';
import { countFigure, COUNTS_FILE, type CountFigure } from './rates.js';
import { ensureRandomSamModel, SAM_HQ_VIT_L } from './sam-weights.js';

/** The random ViT-L folder: next to the random SD model. */
export function samModelDir(args: Args): string {
  return join(dirname(args.modelDir), 'sam-hq-vit-l-random');
}

/** run.py's prompt: the whole-image box of the 512x512 image, in the 1024 frame; postprocess back to 512x512. */
function boxPrompt(): SamDecoderPrompt {
  return {
    coords: Float32Array.of(0, 0, 1024, 1024),
    labels: Int32Array.of(2, 3),
    multimaskOutput: false,
    hqTokenOnly: true,
    inputSize: [1024, 1024],
    originalSize: [512, 512],
  };
}

function readCounts(file: string): Record<string, FlopCount> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, FlopCount>;
  } catch {
    return {};
  }
}

export async function phaseSam(args: Args): Promise<Figures> {
  const t0 = performance.now();
  const gen = ensureRandomSamModel(samModelDir(args), SAM_HQ_VIT_L, log);
  const generation = (performance.now() - t0) / 1000;
  const w = openSamWeights(gen.dir);
  const model = SamModel.fromWeights(
    { source: w.source, shapes: samModelShapes(w.config), description: w.description, identity: w.identity },
    {
      cacheDir: args.graphDir,
      device: args.device,
      onStatus: (m) => log(m),
      ...(args.threads === undefined ? {} : { threads: args.threads }),
    },
  );
  const t1 = performance.now();
  await model.prepare();
  const graphs = (performance.now() - t1) / 1000;
  const image = randn([1, 3, 1024, 1024], 11);
  let features: SamImageFeatures | undefined;
  const encoder = await timeCalls('SAM-HQ ViT-L encoder 1024x1024', async () => (features = await model.encode(image)), Math.min(args.calls, 2), 60);
  let low: Float32Array | undefined;
  const decoder = await timeCalls(
    'SAM-HQ decoder (box, 512x512 mask)',
    async () => (low = (await model.decode(features!, boxPrompt())).lowResLogits.data),
    Math.max(args.calls, 3),
  );
  const figures: Figures = {
    sam_parameters: gen.parameters,
    sam_generated: gen.generated,
    sam_generation_s: round(generation, 1),
    sam_graphs_s: round(graphs, 1),
    sam_encoder_timing: encoder,
    sam_decoder_timing: decoder,
    sam_encoder_s: encoder.min_s,
    sam_decoder_s: decoder.min_s,
    sam_finite: features !== undefined && allFinite(features.imageEmbeddings) && low !== undefined && low.every(Number.isFinite),
    rss_sam_gb: round(maxRssGb(), 2),
  };
  figures['sam_flop_counts'] = await samCounts(args, model, features!);
  await model.dispose();
  return figures;
}

/** FLOPs of the two timed calls (profiled once per graph, then taken from flop-counts.json). */
async function samCounts(args: Args, model: SamModel, features: SamImageFeatures): Promise<Record<string, CountFigure>> {
  const file = join(args.graphDir, COUNTS_FILE);
  const stored = readCounts(file);
  const counts: Record<string, CountFigure> = {};
  const jobs = [
    {
      figure: 'sam_encoder',
      graph: model.graphEntry('sam_vision_encoder'),
      call: 'pixel_values [1, 3, 1024, 1024]',
      feeds: () => ({ pixel_values: randn([1, 3, 1024, 1024], 11) }),
    },
    {
      figure: 'sam_decoder',
      graph: model.graphEntry('sam_decoder'),
      call: 'whole-image box, mask 512x512',
      feeds: () => model.decoderFeeds(features, boxPrompt()),
    },
  ];
  for (const j of jobs) {
    const key = `${j.graph.name}-${j.graph.key} | ${j.call} | onnxruntime ${ORT_VERSION}, optimization ${PROFILE_OPTIMIZATION}`;
    const known = args.recount ? undefined : stored[key];
    if (known !== undefined) {
      counts[j.figure] = countFigure(known, j.call, true);
      continue;
    }
    log(`count: profiling ${j.graph.name} (one call, optimization ${PROFILE_OPTIMIZATION})`);
    const [c] = await profiledCounts(
      j.graph.modelPath,
      { name: `${j.graph.name} (profiled)`, memoryArena: false, ...(args.threads === undefined ? {} : { threads: args.threads }) },
      [(session) => session.run(j.feeds())],
    );
    stored[key] = c!;
    counts[j.figure] = countFigure(c!, j.call, false);
    log(`count: ${j.figure} = ${(c!.flops / 1e9).toFixed(1)} GFLOP`);
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(stored, null, 1));
  renameSync(tmp, file);
  return counts;
}
