import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adain, isStatisticsPixel, maskedAdain, type LatentDims } from '../../../src/methods/shared/adain.js';
import { downMask } from '../../../src/methods/shared/masks.js';
import { float32, tensor } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/expect-close.js';
import { goldenSlice, readGoldenF32, readGoldenIoJson, readGoldenTensor } from '../../helpers/read-golden-tensor.js';

const DIMS: LatentDims = [4, 16, 16];

describe('maskedAdain against the sd1-tiny transfer callback (quirk 7)', () => {
  const io = readGoldenIoJson() as { transfer_steps: { adain_after_step: boolean }[] };
  const adainIterations = io.transfer_steps.flatMap((s, k) => (s.adain_after_step ? [k] : []));
  const structMask = readGoldenF32('transfer.adain_mask_struct').data;
  const appMask = readGoldenF32('transfer.adain_mask_app').data;

  it('the AdaIN iterations are 9..13 (adain_range (10, 20) widened by one step at each end)', () => {
    assert.deepEqual(adainIterations, [9, 10, 11, 12, 13]);
  });

  adainIterations.forEach((k, j) => {
    it(`iteration ${k}: latents[${k}][0] = maskedAdain(latent0_before_adain[${j}], latents[${k}][1])`, () => {
      const actual = maskedAdain(goldenSlice('transfer.latent0_before_adain', j).data, goldenSlice('transfer.latents', k, 1).data, structMask, appMask, DIMS);
      // measured max |diff| about 5e-7 (double statistics vs torch's float mean)
      expectClose(float32(DIMS, actual), float32(DIMS, goldenSlice('transfer.latents', k, 0).data), {
        atol: 1e-5,
        rtol: 1e-5,
        label: `transfer.latents[${k}][0]`,
      });
    });
  });

  it('gives the same result with masks resized here from the 128x128 input masks', () => {
    const resize = (name: string): Float32Array => downMask(tensor('uint8', [128, 128], readGoldenTensor(name).data as Uint8Array), 16, 16);
    const content = goldenSlice('transfer.latent0_before_adain', 0).data;
    const style = goldenSlice('transfer.latents', 9, 1).data;
    assert.deepEqual(
      maskedAdain(content, style, resize('inputs.mask_struct'), resize('inputs.mask_app'), DIMS),
      maskedAdain(content, style, structMask, appMask, DIMS),
    );
  });
});

describe('adain / maskedAdain in closed form', () => {
  const dims: LatentDims = [2, 1, 4];
  const content = Float32Array.from([1, 2, 3, 4, 10, 10, 10, 14]);
  const style = Float32Array.from([0, 0, 6, 6, -1, 1, -1, 1]);

  it('per channel (c - mean_c) / std_c * std_s + mean_s with std = sqrt(unbiased var + 1e-5)', () => {
    const out = adain(content, style, dims);
    const std = (xs: number[]): number => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) + 1e-5);
    };
    const expected = [
      ...[1, 2, 3, 4].map((v) => ((v - 2.5) / std([1, 2, 3, 4])) * std([0, 0, 6, 6]) + 3),
      ...[10, 10, 10, 14].map((v) => ((v - 11) / std([10, 10, 10, 14])) * std([-1, 1, -1, 1]) + 0),
    ];
    out.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] ?? 0)) < 1e-5, `element ${i}: ${v} vs ${expected[i]}`));
  });

  it('masked: statistics only where the mask is exactly 1; blend with the fractional mask', () => {
    const structMask = Float32Array.from([1, 1, 0.5, 0]);
    const appMask = Float32Array.from([0, 1, 1, 0]);
    const out = maskedAdain(content, style, structMask, appMask, dims);
    // channel 0: content stats over [1, 2], style over [0, 6]
    const stdC = Math.sqrt(0.5 + 1e-5);
    const stdS = Math.sqrt(18 + 1e-5);
    const stylised = [1, 2, 3, 4].map((v) => ((v - 1.5) / stdC) * stdS + 3);
    const expected0 = [1, 2, 3, 4].map((v, i) => v * (1 - (structMask[i] ?? 0)) + (stylised[i] ?? 0) * (structMask[i] ?? 0));
    expected0.forEach((e, i) => assert.ok(Math.abs((out[i] ?? 0) - e) < 1e-4, `element ${i}: ${out[i]} vs ${e}`));
    assert.equal(out[3], 4, 'mask 0 keeps the content');
  });

  it('isStatisticsPixel selects exactly 1 only', () => {
    assert.deepEqual([0, 0.5, 0.999999, 1].map(isStatisticsPixel), [false, false, false, true]);
  });

  it('rejects masks with fewer than two statistics pixels and wrong lengths', () => {
    assert.throws(
      () => maskedAdain(content, style, Float32Array.from([1, 0, 0, 0]), Float32Array.from([1, 1, 0, 0]), dims),
      /Expected mask with at least 2 pixels equal to 1 for structMask but received '1 such pixels'/,
    );
    assert.throws(() => adain(content, new Float32Array(3), dims), /Expected 8 \(C \* H \* W\) for style.length but received 3/);
  });
});
