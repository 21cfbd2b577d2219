import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ddimSchedule } from '../../src/diffusion/ddim-schedule.js';
import { ddpmStep, inversionNoise, sampleXtsFromX0, stepCoefficients } from '../../src/diffusion/ddpm-step.js';
import { float32 } from '../../src/tensor/tensor.js';
import { expectClose } from '../helpers/expect-close.js';
import { goldenSlice, readGoldenF32, readGoldenInts, readGoldenIoJson } from '../helpers/read-golden-tensor.js';

const LATENT_DIMS = [4, 16, 16];
const NUM_TIMESTEPS = 20;

const schedule = ddimSchedule({
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  setAlphaToOne: false,
  stepsOffset: 1,
  timestepSpacing: 'leading',
});

function alphasFor(t: number): { alphaProd: number; alphaProdPrev: number } {
  return {
    alphaProd: schedule.alphaCumprodAt(t),
    alphaProdPrev: schedule.alphaCumprodAt(schedule.prevTimestep(t, NUM_TIMESTEPS)),
  };
}

function close(actual: Float32Array, expected: Float32Array, options: { atol: number; rtol: number; label: string }): void {
  expectClose(float32(LATENT_DIMS, actual), float32(LATENT_DIMS, expected), options);
}

describe('stepCoefficients and the DDPM step in closed form', () => {
  it('var = (1 - ab_p) / (1 - ab) * (1 - ab / ab_p) and the x_prev formula', () => {
    const ab = 0.5;
    const abPrev = 0.8;
    const variance = (0.2 / 0.5) * (1 - 0.5 / 0.8); // 0.15
    const c = stepCoefficients(ab, abPrev);
    assert.ok(Math.abs(c.sigma - Math.sqrt(variance)) < 1e-7);
    assert.ok(Math.abs(c.directionScale - Math.sqrt(1 - abPrev - variance)) < 1e-7);
    const sample = Float32Array.from([1, -2]);
    const eps = Float32Array.from([0.5, 0.25]);
    const z = Float32Array.from([2, -1]);
    const out = ddpmStep({ sample, noisePred: eps, z, alphaProd: ab, alphaProdPrev: abPrev });
    for (let i = 0; i < 2; i++) {
      const x0 = ((sample[i] ?? 0) - Math.sqrt(1 - ab) * (eps[i] ?? 0)) / Math.sqrt(ab);
      const expected = Math.sqrt(abPrev) * x0 + Math.sqrt(1 - abPrev - variance) * (eps[i] ?? 0) + Math.sqrt(variance) * (z[i] ?? 0);
      assert.ok(Math.abs((out[i] ?? 0) - expected) < 1e-6, `element ${i}: ${out[i]} vs ${expected}`);
    }
  });

  it('inversionNoise inverts the step: z = (x_prev - mu) / sigma and ddpmStep(z) lands on x_prev', () => {
    const ab = 0.3;
    const abPrev = 0.6;
    const xt = Float32Array.from([0.7, -1.1, 0.05]);
    const eps = Float32Array.from([-0.3, 0.9, 1.5]);
    const xtPrev = Float32Array.from([0.2, 0.4, -0.9]);
    const { z, mu, sigma } = inversionNoise({ xt, xtPrev, noisePred: eps, alphaProd: ab, alphaProdPrev: abPrev });
    const variance = ((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev); // 4/7 * 1/2
    assert.ok(Math.abs(sigma - Math.sqrt(variance)) < 1e-7);
    for (let i = 0; i < 3; i++) {
      const x0 = ((xt[i] ?? 0) - Math.sqrt(1 - ab) * (eps[i] ?? 0)) / Math.sqrt(ab);
      const m = Math.sqrt(abPrev) * x0 + Math.sqrt(1 - abPrev - variance) * (eps[i] ?? 0);
      assert.ok(Math.abs((mu[i] ?? 0) - m) < 1e-6);
      assert.ok(Math.abs((z[i] ?? 0) - ((xtPrev[i] ?? 0) - m) / Math.sqrt(variance)) < 1e-5);
    }
    const back = ddpmStep({ sample: xt, noisePred: eps, z, alphaProd: ab, alphaProdPrev: abPrev });
    back.forEach((v, i) => assert.ok(Math.abs(v - (xtPrev[i] ?? 0)) < 1e-6));
  });

  it('rejects mismatched lengths and alphas outside (0, 1)', () => {
    const a = new Float32Array(4);
    assert.throws(
      () => ddpmStep({ sample: a, noisePred: new Float32Array(3), z: a, alphaProd: 0.5, alphaProdPrev: 0.6 }),
      /Expected 4 \(the length of sample\) for noisePred.length but received 3 of type number/,
    );
    assert.throws(() => ddpmStep({ sample: a, noisePred: a, z: a, alphaProd: 1, alphaProdPrev: 0.6 }), /for alphaProd/);
  });
});

describe('ddpmStep against the sd1-tiny transfer loop', () => {
  const io = readGoldenIoJson() as { run_config: { skip_steps: number }; transfer_steps: { adain_after_step: boolean }[] };
  const skip = io.run_config.skip_steps;
  const timesteps = readGoldenInts('transfer.timesteps');
  const adainIterations = io.transfer_steps.flatMap((s, k) => (s.adain_after_step ? [k] : []));
  // batch slot b -> the inversion whose zs it follows: [out, style, struct] = [struct, app, struct] (quirk 15)
  const zsOfSlot = ['inversion.struct.zs', 'inversion.app.zs', 'inversion.struct.zs'];

  it('every iteration and slot: x_prev = ddpmStep(previous latent, guided noise_pred, z[skip + k])', () => {
    let maxAbs = 0;
    let differing = 0;
    for (let k = 0; k < timesteps.length; k++) {
      const t = timesteps[k] ?? 0;
      for (let b = 0; b < 3; b++) {
        const sample = k === 0 ? goldenSlice('transfer.init_latents', b).data : goldenSlice('transfer.latents', k - 1, b).data;
        const adainSlot = b === 0 && adainIterations.includes(k);
        const expected = adainSlot ? goldenSlice('transfer.latent0_before_adain', adainIterations.indexOf(k)).data : goldenSlice('transfer.latents', k, b).data;
        const actual = ddpmStep({
          sample,
          noisePred: goldenSlice('transfer.noise_pred', k, b).data,
          z: goldenSlice(zsOfSlot[b] ?? '', skip + k).data,
          ...alphasFor(t),
        });
        // |z| reaches ~40 here and sigma * z dominates x_prev, so an absolute 1e-5 alone would be tighter than
        // float32 resolution on the largest values; rtol 1e-5 + atol 1e-5 allows a few ulp either way.
        close(actual, expected, { atol: 1e-5, rtol: 1e-5, label: `transfer step k=${k} slot=${b} (t=${t})` });
        actual.forEach((v, i) => {
          maxAbs = Math.max(maxAbs, Math.abs(v - (expected[i] ?? 0)));
          if (v !== expected[i]) differing++;
        });
      }
    }
    // with the reference's op order in float32 the step is in fact bit-identical on all 14 x 3 x 1024 values
    assert.equal(differing, 0, `${differing} values differ, max |diff| ${maxAbs}`);
  });
});

describe('sampleXtsFromX0 against the sd1-tiny inversion (quirk 13)', () => {
  const inversionTimesteps = readGoldenInts('scheduler.timesteps_20');
  const alphaProds = inversionTimesteps.map((t) => schedule.alphaCumprodAt(t));

  for (const image of ['app', 'struct']) {
    it(`inversion.${image}.wts: sqrt(ab) x0 + sqrt(1 - ab) noise[idx], x0 = wts[20]`, () => {
      const wts = readGoldenF32(`inversion.${image}.wts`);
      const noises = Array.from({ length: 20 }, (_, idx) => goldenSlice(`inversion.${image}.noise`, idx, 0).data);
      const x0 = goldenSlice(`inversion.${image}.wts`, 20).data;
      const xts = sampleXtsFromX0(x0, alphaProds, noises);
      assert.equal(xts.length, 21);
      assert.equal(wts.dims[0], 21);
      // entries idx >= 1 (and x0 itself) were re-written in the loop as mu + sigma*z: equal up to rounding
      for (let idx = 0; idx <= 20; idx++) {
        // measured max |diff| 7.2e-7 (struct), 4.8e-7 (app)
        close(xts[idx] ?? new Float32Array(0), goldenSlice(`inversion.${image}.wts`, idx).data, {
          atol: 1e-5,
          rtol: 0,
          label: `inversion.${image}.wts[${idx}]`,
        });
      }
    });
  }

  it('inversion.app.wts[0] (never re-written) is bit-exact from the encoded latent vae.encode.latent', () => {
    const w0 = goldenSlice('vae.encode.latent', 0).data;
    const xts = sampleXtsFromX0(w0, alphaProds.slice(0, 1), [goldenSlice('inversion.app.noise', 0, 0).data]);
    const expected = goldenSlice('inversion.app.wts', 0).data;
    (xts[0] ?? new Float32Array(0)).forEach((v, i) => assert.equal(v, expected[i], `element ${i}`));
  });

  it('rejects a noise list of the wrong length', () => {
    assert.throws(() => sampleXtsFromX0(new Float32Array(2), [0.5, 0.4], [new Float32Array(2)]), /for noises.length but received 1/);
  });
});
