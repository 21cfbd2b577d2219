import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { downMask, maskToFloat, resizeBilinear } from '../../../src/methods/shared/masks.js';
import { tensor } from '../../../src/tensor/tensor.js';
import { readGoldenF32, readGoldenTensor } from '../../helpers/read-golden-tensor.js';

function goldenMask(name: string): Uint8Array {
  const t = readGoldenTensor(name);
  if (!(t.data instanceof Uint8Array)) throw new Error(`${name}: expected U8`);
  return t.data;
}

describe('downMask against the sd1-tiny AdaIN masks (mask_down: bilinear 128 -> 16)', () => {
  for (const [input, output] of [
    ['inputs.mask_struct', 'transfer.adain_mask_struct'],
    ['inputs.mask_app', 'transfer.adain_mask_app'],
  ] as const) {
    it(`${output} is bit-identical`, () => {
      const actual = downMask(tensor('uint8', [128, 128], goldenMask(input)), 16, 16);
      const expected = readGoldenF32(output).data;
      assert.equal(actual.length, 256);
      expected.forEach((v, i) => assert.equal(actual[i], v, `pixel ${i}`));
      // quirk 7: the 8x reduction of a binary mask gives 0 / 0.5 / 1 (values seen in this golden)
      assert.ok(Array.from(actual).every((v) => v === 0 || v === 0.5 || v === 1 || v === 0.25 || v === 0.75));
    });
  }
});

describe('resizeBilinear (F.interpolate bilinear, align_corners=False, no antialias)', () => {
  it('shrinking by 2 averages 2x2 blocks', () => {
    const src = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    assert.deepEqual(Array.from(resizeBilinear(src, 4, 4, 2, 2)), [3.5, 5.5, 11.5, 13.5]);
  });

  it('clamps negative source coordinates to 0 and the last tap to the border when enlarging', () => {
    // 2 -> 4: src = 0.5 * (o + 0.5) - 0.5 = [-0.25 -> 0, 0.25, 0.75, 1.25 (i0 = 1, i1 = 1)]
    const out = resizeBilinear(Float32Array.from([0, 8]), 1, 2, 1, 4);
    assert.deepEqual(Array.from(out), [0, 2, 6, 8]);
  });

  it('equal sizes copy', () => {
    const src = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    assert.deepEqual(Array.from(resizeBilinear(src, 2, 3, 2, 3)), Array.from(src));
  });

  it('matches torch 1.13 on a non-integer 10x7 -> 3x5 case within 1 ulp (float32 taps with the float scale)', () => {
    // torch: F.interpolate(torch.arange(70.).view(1, 1, 10, 7) / 7, size=(3, 5), mode='bilinear')
    const src = Float32Array.from({ length: 70 }, (_, i) => Math.fround(i / 7));
    const out = resizeBilinear(src, 10, 7, 3, 5);
    // rows: scale 10/3 -> src 1.1667, 4.5, 7.8333; cols: scale 1.4 -> src 0.2, 1.6, 3.0 (2.99999994 in float), 4.4, 5.8
    const rows = [7 / 6, 4.5, 47 / 6];
    const cols = [0.2, 1.6, 3, 4.4, 5.8];
    out.forEach((v, i) => {
      const expected = ((rows[Math.floor(i / 5)] ?? 0) * 7 + (cols[i % 5] ?? 0)) / 7;
      assert.ok(Math.abs(v - expected) < 2e-6, `output ${i}: ${v} vs ${expected}`);
    });
  });

  it('rejects bad sizes', () => {
    assert.throws(() => resizeBilinear(new Float32Array(4), 2, 2, 0, 1), /Expected positive integer for dstH but received 0/);
    assert.throws(() => resizeBilinear(new Float32Array(3), 2, 2, 1, 1), /Expected 4 \(srcH \* srcW\) for src.length but received 3/);
  });
});

describe('maskToFloat', () => {
  it('maps any non-zero value to 1, like bool -> float', () => {
    assert.deepEqual(Array.from(maskToFloat(Uint8Array.from([0, 1, 255, 0]))), [0, 1, 1, 0]);
  });

  it('downMask rejects a mask that is not [H, W]', () => {
    assert.throws(() => downMask(tensor('uint8', [1, 4, 4]), 2, 2), /Expected \[H, W\] for mask.dims but received \[1,4,4\] of type array/);
  });
});
