import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ddimSchedule } from '../../src/diffusion/ddim-schedule.js';
import { ddpmStep } from '../../src/diffusion/ddpm-step.js';
import { invert, toInversionLatent, INVERSION_LATENT_SCALE } from '../../src/diffusion/inversion.js';
import { TorchCpuRng } from '../../src/tensor/rng.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const schedule = ddimSchedule({
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  setAlphaToOne: false,
  stepsOffset: 1,
  timestepSpacing: 'leading',
});
const x0: Tensor<'float32'> = { dtype: 'float32', dims: [1, 2, 2, 2], data: Float32Array.from([0.5, -0.25, 1, 0, -1, 0.75, 0.1, -0.3]) };
// A stand-in UNet: eps depends on the latent and the timestep, differently for the two prompts.
const predict = async (latent: Tensor<'float32'>, t: number): Promise<{ uncond: Float32Array; cond: Float32Array }> => ({
  uncond: latent.data.map((v) => Math.fround(0.3 * v + t / 2000)),
  cond: latent.data.map((v) => Math.fround(-0.2 * v + 0.1)),
});

test('each z makes the eta = 1 step from xts[i] land on xts[i + 1]; zs[N - 1] = 0; xts[N] = x0', async () => {
  const n = 10;
  const { xts, zs } = await invert(x0, schedule, predict, { numSteps: n, guidanceScale: 3.5, noise: new TorchCpuRng(3) });
  assert.equal(xts.length, n + 1);
  assert.equal(zs.length, n);
  assert.ok(zs[n - 1]!.every((v) => v === 0));
  const ts = schedule.timesteps(n);
  for (let i = 0; i < n - 1; i++) {
    const t = ts[i]!;
    const { uncond, cond } = await predict({ ...x0, data: xts[i]! }, t);
    const eps = uncond.map((u, k) => Math.fround(u + Math.fround(3.5 * Math.fround(cond[k]! - u))));
    const stepped = ddpmStep({
      sample: xts[i]!,
      noisePred: eps,
      z: zs[i]!,
      alphaProd: schedule.alphaCumprodAt(t),
      alphaProdPrev: schedule.alphaCumprodAt(schedule.prevTimestep(t, n)),
    });
    stepped.forEach((v, k) => assert.ok(Math.abs(v - xts[i + 1]![k]!) < 1e-5, `step ${i} element ${k}: ${v} vs ${xts[i + 1]![k]}`));
  }
  x0.data.forEach((v, k) => assert.ok(Math.abs(v - xts[n]![k]!) < 1e-5));
});

test('an Rng draws the noise maps from the smallest timestep up, like the reference', async () => {
  const n = 5;
  const fromRng = await invert(x0, schedule, predict, { numSteps: n, guidanceScale: 3.5, noise: new TorchCpuRng(11) });
  const rng = new TorchCpuRng(11);
  const draws: Float32Array[] = [];
  for (let i = n - 1; i >= 0; i--) draws[i] = rng.randn(8);
  assert.deepEqual(fromRng.noise, draws);
  const fromArrays = await invert(x0, schedule, predict, { numSteps: n, guidanceScale: 3.5, noise: draws });
  assert.deepEqual(fromArrays.zs, fromRng.zs);
  await assert.rejects(invert(x0, schedule, predict, { numSteps: n, guidanceScale: 3.5, noise: draws.slice(1) }), /inversion needs 5 noise maps of 8 values/);
});

test("the inversion latent uses the reference's fixed 0.18215 whatever the VAE config says", () => {
  assert.equal(toInversionLatent(x0, INVERSION_LATENT_SCALE), x0);
  const other = toInversionLatent(x0, 0.13025);
  other.data.forEach((v, k) => assert.ok(Math.abs(v - x0.data[k]! * (0.18215 / 0.13025)) < 1e-6));
});
