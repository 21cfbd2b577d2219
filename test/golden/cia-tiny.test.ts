/**
 * The cia-tiny golden case (Cross-Image Attention's official code on the tiny model; test/fixtures/golden/cia-tiny,
 * whose model/ is a link to sd1-tiny's identical model): our groups pass within io.json's tolerances, and each rule
 * the groups check is one they can see fail (negative controls through the same engine functions).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTensors } from '../../src/golden/compare.js';
import { ciaForward, ciaTransferLoop, closeEngine, openEngine, type GoldenEngine } from '../../src/golden/engine.js';
import { loadGoldenCase, type GoldenCase } from '../../src/golden/golden-case.js';
import { runGolden } from '../../src/golden/runner.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fixturesDir } from '../helpers/paths.js';

const caseDir = join(fixturesDir, 'golden', 'cia-tiny');
const cacheDir = mkdtempSync(join(tmpdir(), 'e4e-cia-golden-'));
let golden: GoldenCase;
let engine: GoldenEngine;

before(() => {
  golden = loadGoldenCase(caseDir);
  engine = openEngine(golden.modelDir, { cacheDir });
});
after(async () => {
  await closeEngine(engine);
  rmSync(cacheDir, { recursive: true, force: true });
});

test('the fixture shares sd1-tiny model files through a relative link', () => {
  assert.ok(lstatSync(join(caseDir, 'model')).isSymbolicLink());
  assert.equal(readlinkSync(join(caseDir, 'model')), join('..', 'sd1-tiny', 'model'));
});

test('cia-tiny: text, inversion, cia_unet and cia_transfer pass (with the natural-mode self-segmentation check)', async () => {
  const report = await runGolden(caseDir, { only: ['text', 'inversion', 'cia_unet', 'cia_transfer'], cacheDir });
  const failing = report.groups
    .filter((g) => !g.ok)
    .map(
      (g) =>
        `${g.group}: ${
          g.error ??
          g.comparisons
            .filter((c) => !c.ok)
            .map((c) => c.label)
            .join(', ')
        }`,
    );
  assert.deepEqual(failing, []);
  assert.deepEqual(
    report.groups.map((g) => g.group),
    ['text', 'cia_unet', 'inversion', 'cia_transfer'],
  );
  const transfer = report.groups.find((g) => g.group === 'cia_transfer')!;
  assert.equal(transfer.comparisons.length, 14);
  assert.equal(transfer.checks.length, 3);
  assert.ok(transfer.checks.every((c) => c.ok));
  const unet = report.groups.find((g) => g.group === 'cia_unet')!;
  assert.equal(unet.comparisons.length, 10);
});

const f32 = (name: string): Tensor<'float32'> => golden.get(name) as Tensor<'float32'>;
const ranges = (): { range32: { start: number; end: number }; range64: { start: number; end: number } } => {
  const r = (k: string): { start: number; end: number } => {
    const v = golden.runConfig[k] as [number, number];
    return { start: v[0], end: v[1] };
  };
  return { range32: r('cross_attn_32_range'), range64: r('cross_attn_64_range') };
};

async function unetCall(over: { modelStep?: number; contrastStrength?: number; performSwap?: boolean }): Promise<Tensor<'float32'>> {
  const t = golden.get('cia_unet.timestep');
  const result = await ciaForward(engine, {
    modelStep: over.modelStep ?? 2,
    ranges: ranges(),
    contrastStrength: over.contrastStrength ?? 1.67,
    performSwap: over.performSwap ?? true,
    sample: f32('cia_unet.sample'),
    timestep: Number(t.data[0]),
    encoderHiddenStates: f32('cia_unet.encoder_hidden_states'),
  });
  return result.noise;
}

test('negative controls: the swap, its contrast and its K/V source each move cia_unet.swap.out beyond the tolerance', async () => {
  const expected = f32('cia_unet.swap.out');
  const tol = { ...golden.tolerance('cia_unet.swap.out'), label: 'swap' };
  assert.ok(compareTensors(await unetCall({}), expected, tol).ok);
  assert.ok(!compareTensors(await unetCall({ performSwap: false }), expected, tol).ok, 'without the swap');
  assert.ok(!compareTensors(await unetCall({ contrastStrength: 1 }), expected, tol).ok, 'without the contrast');
  assert.ok(!compareTensors(await unetCall({ modelStep: 5 }), expected, tol).ok, 'structure K/V (refresh step)');
});

test('negative controls: the AdaIN masks and the swap guidance each move cia_transfer.latents beyond the tolerance', async () => {
  const rows = (name: string, n: number): Float32Array[] => {
    const t = f32(name);
    const per = t.data.length / n;
    return Array.from({ length: n }, (_, i) => t.data.slice(i * per, (i + 1) * per));
  };
  const steps = golden.runConfig['num_timesteps'] as number;
  const inv = (w: string): { xts: Float32Array[]; zs: Float32Array[] } => ({
    xts: rows(`inversion.${w}.wts`, steps + 1),
    zs: rows(`inversion.${w}.zs`, steps),
  });
  const maskOf = (name: string): Float32Array => Float32Array.from(golden.get(name).data as Uint8Array, Number);
  const masks = { structure: maskOf('segment.mask_struct_64'), appearance: maskOf('segment.mask_style_64') };
  const adain = golden.runConfig['adain_range'] as [number, number];
  const run = (over: { swapGuidanceScale?: number; masks?: typeof masks }): Promise<Tensor<'float32'>> =>
    ciaTransferLoop(engine, {
      app: inv('app'),
      struct: inv('struct'),
      latentDims: [4, 16, 16],
      prompt: golden.runConfig['prompt'] as string,
      numSteps: steps,
      skip: golden.runConfig['skip_steps'] as number,
      ranges: ranges(),
      adainRange: { start: adain[0], end: adain[1] },
      swapGuidanceScale: over.swapGuidanceScale ?? 3.5,
      contrastStrength: 1.67,
      masks: over.masks ?? masks,
    }).then((r) => ({ dtype: 'float32', dims: [3, 4, 16, 16], data: Float32Array.from(r.latents.flatMap((l) => Array.from(l))) }));
  const expected = f32('cia_transfer.final_latents');
  const tol = { ...golden.tolerance('cia_transfer.final_latents'), label: 'final' };
  assert.ok(compareTensors(await run({}), expected, tol).ok);
  const ones = new Float32Array(256).fill(1);
  assert.ok(!compareTensors(await run({ masks: { structure: ones, appearance: ones } }), expected, tol).ok, 'AdaIN over all pixels');
  assert.ok(!compareTensors(await run({ swapGuidanceScale: 1 }), expected, tol).ok, 'without swap guidance');
});
