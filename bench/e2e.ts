/**
 * The `e2e` phase of `npm run bench`: one whole appearance transfer through the library API (loadPipeline, then
 * transfer) at 512x512 on the random SD-1.5 model, with the example birds and their masks, at a REDUCED schedule
 * that fits the bench time. Both inversions are computed (fresh inversion cache); the transfer runs matching,
 * structure copy and AdaIN. From the per-step times the official settings (100 steps, skip 32) are extrapolated.
 *
 * Graphs come from the bench graph cache: the pipeline's cache folder is a temporary folder whose `graphs` is a
 * link to `<graph-dir>/graphs`, so its `inversions` folder starts empty and is deleted afterwards.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipeline, type ProgressEvent } from '../src/pipeline/pipeline.js';
import { DEFAULT_TRANSFER_OPTIONS } from '../src/pipeline/options.js';
import { adainAfterIteration, attentionMode, stepSeenByUnet } from '../src/methods/eye-for-an-eye/schedule.js';
import { allFinite, EXAMPLES_DIR, log, maxRssGb, round, type Args, type Figures } from './common.js';

/** The bench's schedule: 2 x 10 inversion UNet calls at batch 2, 7 transfer calls at batch 6. */
export const E2E_REDUCED = Object.freeze({
  numSteps: 10,
  skip: 3,
  // Truncated-schedule steps seen by the UNet: 0, 0, 1, 2, 3, 4, 5 -> off, off, match x4, structure copy (step 5).
  featRange: Object.freeze([1, 7] as const),
  // AdaIN after iterations 4, 5, 6 (start - 1 .. end).
  adainRange: Object.freeze([5, 10] as const),
});

/** What the estimate extrapolates to: the authors' settings (the library defaults). */
export const E2E_OFFICIAL = Object.freeze({ numSteps: DEFAULT_TRANSFER_OPTIONS.numSteps, skip: DEFAULT_TRANSFER_OPTIONS.skip });

export const E2E_ESTIMATE_NOTE =
  "e2e_official_estimate_s is an EXTRAPOLATION, not a measurement: the reduced run's wall time, " +
  'plus (official - reduced) inversion UNet calls x e2e_inversion_step_s, plus (official - reduced) transfer steps x ' +
  'e2e_transfer_step_s (per-step figures: MEDIANS of the steady steps, the first step of each phase excluded; ' +
  'e2e_official_estimate_mean_s uses the means); fixed costs (load, sessions, encode, text, decode, warm-ups) are ' +
  'taken once, as measured';

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Per-step durations of one phase from its progress events: deltas between consecutive steps. The first step has no
 * event before it; its duration is the phase's time minus the other steps (it carries the phase's fixed overhead
 * and, for the first phase at a batch size, the session's warm-up).
 */
function stepDurations(events: readonly { step: number; t: number }[], phaseSeconds: number): number[] {
  const deltas = events.slice(1).map((e, i) => (e.t - events[i]!.t) / 1000);
  return [phaseSeconds - deltas.reduce((a, b) => a + b, 0), ...deltas];
}

export async function phaseE2E(args: Args): Promise<Figures> {
  const graphs = join(args.graphDir, 'graphs');
  mkdirSync(graphs, { recursive: true });
  const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-bench-e2e-'));
  const link = join(cacheDir, 'graphs');
  symlinkSync(graphs, link, 'dir');
  const events: Record<string, { step: number; t: number }[]> = {};
  let last = performance.now();
  const onProgress = (e: ProgressEvent): void => {
    const now = performance.now();
    (events[e.phase] ??= []).push({ step: e.step, t: now });
    if (e.phase !== 'decode') log(`e2e ${e.phase} step ${e.step}/${e.total}: ${((now - last) / 1000).toFixed(2)} s${e.cached === true ? ' (CACHED)' : ''}`);
    last = now;
  };
  try {
    const t0 = performance.now();
    const pipeline = await loadPipeline(args.modelDir, {
      cacheDir,
      onStatus: log,
      device: args.device,
      precision: args.precision,
      ...(args.threads === undefined ? {} : { threads: args.threads }),
    });
    const loadS = (performance.now() - t0) / 1000;
    const { numSteps, skip, featRange, adainRange } = E2E_REDUCED;
    log(`e2e: transfer 512x512, numSteps ${numSteps}, skip ${skip}, featRange [${featRange.join(', ')}], adainRange [${adainRange.join(', ')}], masks on`);
    last = performance.now();
    const result = await pipeline.transfer(
      { structure: join(EXAMPLES_DIR, 'bird-blue.png'), appearance: join(EXAMPLES_DIR, 'bird-red.png') },
      {
        domain: 'bird',
        size: 512,
        numSteps,
        skip,
        featRange,
        adainRange,
        structureMask: join(EXAMPLES_DIR, 'bird-blue-mask.png'),
        appearanceMask: join(EXAMPLES_DIR, 'bird-red-mask.png'),
      },
      { onProgress },
    );
    const reducedS = (performance.now() - t0) / 1000;
    await pipeline.dispose();

    const tm = result.timings;
    const phaseS = (k: string): number => tm[k] ?? 0;
    const named = ['load', 'encode', 'text', 'inversion-app', 'inversion-struct', 'transfer', 'decode'];
    // transfer() opens the UNet session between `text` and `inversion-app`, outside its named phases.
    const unetOpenS = phaseS('total') - named.reduce((a, k) => a + phaseS(k), 0);
    const invApp = stepDurations(events['inversion-app'] ?? [], phaseS('inversion-app'));
    const invStruct = stepDurations(events['inversion-struct'] ?? [], phaseS('inversion-struct'));
    const transfer = stepDurations(events['transfer'] ?? [], phaseS('transfer'));
    // Steady steps: every step but the first of each phase (warm-up of the batch size, cache-key hashing).
    const invSteady = [...invApp.slice(1), ...invStruct.slice(1)];
    const trSteady = transfer.slice(1);
    // Medians: on a machine shared with other work a few disturbed steps would pull a mean up.
    const invStep = median(invSteady);
    const trStep = median(trSteady);
    const extraInv = 2 * (E2E_OFFICIAL.numSteps - numSteps);
    const extraTr = E2E_OFFICIAL.numSteps - E2E_OFFICIAL.skip - (numSteps - skip);
    const officialS = reducedS + extraInv * invStep + extraTr * trStep;
    const officialMeanS = reducedS + extraInv * mean(invSteady) + extraTr * mean(trSteady);
    const fr = { start: featRange[0], end: featRange[1] };
    const ar = { start: adainRange[0], end: adainRange[1] };
    const figures: Figures = {
      e2e_device: args.device,
      e2e_settings: { size: 512, numSteps, skip, featRange, adainRange, masks: true, transfer_steps: numSteps - skip, inversion_unet_calls: 2 * numSteps },
      e2e_inversion_cache:
        result.metadata.inversionCache.app === 'miss' && result.metadata.inversionCache.struct === 'miss'
          ? 'fresh (both computed)'
          : result.metadata.inversionCache,
      e2e_reduced_s: round(reducedS, 2),
      e2e_load_pipeline_s: round(loadS, 2),
      e2e_phases_s: {
        load_images: round(phaseS('load'), 2),
        encode: round(phaseS('encode'), 2),
        text: round(phaseS('text'), 2),
        unet_session: round(unetOpenS, 2),
        inversion_app: round(phaseS('inversion-app'), 2),
        inversion_struct: round(phaseS('inversion-struct'), 2),
        transfer: round(phaseS('transfer'), 2),
        decode: round(phaseS('decode'), 2),
        total: round(phaseS('total'), 2),
      },
      e2e_inversion_step_s: round(invStep),
      e2e_inversion_step_mean_s: round(mean(invSteady)),
      e2e_inversion_step_min_s: round(Math.min(...invSteady)),
      e2e_inversion_steps_s: { app: invApp.map((x) => round(x)), struct: invStruct.map((x) => round(x)) },
      e2e_transfer_step_s: round(trStep),
      e2e_transfer_step_mean_s: round(mean(trSteady)),
      e2e_transfer_step_min_s: round(Math.min(...trSteady)),
      e2e_transfer_first_step_s: round(transfer[0] ?? NaN),
      e2e_transfer_steps: transfer.map((s, i) => ({
        iteration: i,
        mode: attentionMode(stepSeenByUnet(i), fr),
        adain: adainAfterIteration(i, ar),
        s: round(s),
      })),
      e2e_official_settings: {
        numSteps: E2E_OFFICIAL.numSteps,
        skip: E2E_OFFICIAL.skip,
        inversion_unet_calls: 2 * E2E_OFFICIAL.numSteps,
        transfer_steps: E2E_OFFICIAL.numSteps - E2E_OFFICIAL.skip,
      },
      e2e_official_estimate_s: round(officialS, 1),
      e2e_official_estimate_min: round(officialS / 60, 1),
      e2e_official_estimate_mean_s: round(officialMeanS, 1),
      e2e_official_estimate_note: E2E_ESTIMATE_NOTE,
      e2e_finite: allFinite(result.image),
      e2e_png_bytes: result.png.length,
      e2e_peak_rss_gb: round(maxRssGb(), 2),
    };
    log(
      `e2e: reduced run ${reducedS.toFixed(1)} s; inversion step ${invStep.toFixed(2)} s, transfer step ${trStep.toFixed(2)} s; official settings estimated ${(officialS / 60).toFixed(1)} min (extrapolated)`,
    );
    return figures;
  } finally {
    unlinkSync(link); // the link only, never the bench graph cache behind it
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
