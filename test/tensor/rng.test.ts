import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { E4EError } from '../../src/errors.js';
import { TorchCpuRng, fmaf32 } from '../../src/tensor/rng.js';
import { goldenSlice } from '../helpers/read-golden-tensor.js';

// Reference values printed by torch 1.13 (CPU, float32, AVX2 kernel) with float(np.float32(v)).
const SEED0_RANDN4 = [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684312582015991];
const SEED42_RANDN4 = [0.33669036626815796, 0.12880940735340118, 0.23446236550807953, 0.23033303022384644];
const SEED0_RANDN16 = [
  -1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383, 0.8487103581428528, 0.6920091509819031, -0.31601276993751526,
  -2.1152193546295166, 0.32227492332458496, -1.2633347511291504, 0.34998318552970886, 0.30813392996788025, 0.11984150856733322, 1.237657904624939,
  1.1167771816253662, -0.2472781538963318,
];
const SEED42_RANDN20 = [
  1.9269152879714966, 1.4872840642929077, 0.9007171988487244, -2.1055209636688232, -0.7581311464309692, 1.078317642211914, 0.8008005619049072,
  1.680620551109314, 0.3558599054813385, -0.6866229772567749, -0.4933563470840454, 0.2414877861738205, -0.2316243201494217, 0.041759490966796875,
  -0.2515752911567688, 0.859858512878418, -0.3097267746925354, -0.3957104980945587, 0.8034093379974365, -0.6215953826904297,
];

function assertBitEqual(actual: Float32Array, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${label}: element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('TorchCpuRng reproduces torch.manual_seed(seed); torch.randn(n) on CPU bit for bit', () => {
  it('scalar path (n < 16): the published seed-0 and seed-42 values', () => {
    assertBitEqual(new TorchCpuRng(0).randn(4), SEED0_RANDN4, 'seed 0, randn(4)');
    assertBitEqual(new TorchCpuRng(42).randn(4), SEED42_RANDN4, 'seed 42, randn(4)');
  });

  it('vectorised path (n >= 16), including the recomputed tail block when n % 16 != 0', () => {
    assertBitEqual(new TorchCpuRng(0).randn(16), SEED0_RANDN16, 'seed 0, randn(16)');
    assertBitEqual(new TorchCpuRng(42).randn(20), SEED42_RANDN20, 'seed 42, randn(20)');
  });

  it('keeps the cached second Box-Muller value between scalar calls, as torch does', () => {
    const rng = new TorchCpuRng(0);
    assertBitEqual(rng.randn(3), SEED0_RANDN4.slice(0, 3), 'first randn(3)');
    const second = rng.randn(3);
    assert.equal(second[0], SEED0_RANDN4[3]);
    assertBitEqual(second, [0.5684312582015991, -1.0845223665237427, -1.3985954523086548], 'second randn(3)');
    const vectorised = rng.randn(17);
    assertBitEqual(vectorised.subarray(0, 4), [-0.08853142708539963, 0.8743818402290344, -0.14347384870052338, -0.1116093322634697], 'randn(17) head');
    assertBitEqual(vectorised.subarray(13), [0.7924439907073975, -0.28966769576072693, 0.05250748619437218, 0.5228604674339294], 'randn(17) tail');
    assertBitEqual(rng.randn(1), [0.8511652946472168], 'randn(1) after');
  });

  it('uses the low 32 bits of the seed for mt19937', () => {
    assertBitEqual(new TorchCpuRng(2n ** 32n + 7n).randn(2), new TorchCpuRng(7).randn(2), 'seed 2^32 + 7 vs 7');
  });

  it('replays the 40 randn_like draws of the sd1-tiny inversion (seed 1100, [1, 4, 16, 16] each) exactly', () => {
    // sample_xts_from_x0 draws for idx = N-1 .. 0, app image first, then the structure image
    const rng = new TorchCpuRng(1100);
    for (const image of ['app', 'struct']) {
      for (let idx = 19; idx >= 0; idx--) {
        assertBitEqual(rng.randn(1024), goldenSlice(`inversion.${image}.noise`, idx).data, `inversion.${image}.noise[${idx}]`);
      }
    }
  });

  it('rejects invalid seeds and sizes with E_INVALID_PARAMETER', () => {
    assert.throws(
      () => new TorchCpuRng(-1),
      (e: unknown) => e instanceof E4EError && e.code === 'E_INVALID_PARAMETER',
    );
    assert.throws(() => new TorchCpuRng(0.5), /Expected non-negative integer below 2\^64 for seed but received 0.5 of type number/);
    assert.throws(() => new TorchCpuRng(0).randn(-1), /for n but received -1/);
  });
});

describe('fmaf32', () => {
  it('rounds a*b + c once', () => {
    const a = Math.fround(1 + 2 ** -12);
    // a*a = 1 + 2^-11 + 2^-24: the 2^-24 is lost by fround(fround(a*a) - 1) but kept by the fused form
    assert.equal(fmaf32(a, a, -1), Math.fround(2 ** -11 + 2 ** -24));
    assert.equal(Math.fround(Math.fround(a * a) - 1), Math.fround(2 ** -11));
  });

  it('resolves a double sum that lands on a float32 midpoint using the residual', () => {
    // a*b = 2^-24 - 2^-70 exactly; c + a*b lies just below the midpoint between c = 1 + 2^-23 and 1 + 2^-22, but the
    // double sum rounds onto the midpoint, where a plain fround would tie to the even 1 + 2^-22
    const a = Math.fround(2 ** -12 * (1 + 2 ** -23));
    const b = Math.fround(2 ** -12 * (1 - 2 ** -23));
    const c = Math.fround(1 + 2 ** -23);
    assert.equal(Math.fround(a * b + c), 1 + 2 ** -22);
    assert.equal(fmaf32(a, b, c), c);
  });
});
