import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../../src/onnx/graph-builder.js';
import { WeightScope, WeightSet } from '../../../src/onnx/weight-scope.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { Session } from '../../../src/runtime/session.js';
import { buildFourierFilter, buildFreeU, validateFreeU, type FreeUOptions } from '../../../src/models/unet/freeu.js';
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/expect-close.js';
import { randomFloats, seededUniform } from './tiny-unet.js';

/** The official Fourier_filter written out literally: fftn, fftshift, window *= scale, ifftshift, ifftn, real. */
function referenceFourierFilter(x: Float32Array, dims: readonly number[], scale: number): Float32Array {
  const [b, c, h, w] = dims as [number, number, number, number];
  const pyStart = (v: number, n: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const inWindow = (i: number, n: number): boolean => i >= pyStart(Math.floor(n / 2) - 1, n) && i < Math.min(Math.floor(n / 2) + 1, n);
  // mask in unshifted frequency order: shifted index i holds frequency (i - n//2) mod n
  const mask = new Float64Array(h * w).fill(1);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      if (inWindow(i, h) && inWindow(j, w)) mask[((((i - Math.floor(h / 2)) % h) + h) % h) * w + ((((j - Math.floor(w / 2)) % w) + w) % w)] = scale;
    }
  }
  const out = new Float32Array(x.length);
  for (let plane = 0; plane < b * c; plane++) {
    const base = plane * h * w;
    const re = new Float64Array(h * w);
    const im = new Float64Array(h * w);
    for (let ky = 0; ky < h; ky++) {
      for (let kx = 0; kx < w; kx++) {
        for (let my = 0; my < h; my++) {
          for (let mx = 0; mx < w; mx++) {
            const phase = -2 * Math.PI * ((ky * my) / h + (kx * mx) / w);
            re[ky * w + kx]! += x[base + my * w + mx]! * Math.cos(phase);
            im[ky * w + kx]! += x[base + my * w + mx]! * Math.sin(phase);
          }
        }
      }
    }
    for (let my = 0; my < h; my++) {
      for (let mx = 0; mx < w; mx++) {
        let sum = 0;
        for (let ky = 0; ky < h; ky++) {
          for (let kx = 0; kx < w; kx++) {
            const k = ky * w + kx;
            const phase = 2 * Math.PI * ((ky * my) / h + (kx * mx) / w);
            sum += mask[k]! * (re[k]! * Math.cos(phase) - im[k]! * Math.sin(phase));
          }
        }
        out[base + my * w + mx] = sum / (h * w);
      }
    }
  }
  return out;
}

function graphOf(
  build: (scope: WeightScope, x: ReturnType<GraphBuilder['input']>) => ReturnType<GraphBuilder['input']>,
  channels: number | string,
): GraphBuilder {
  const g = new GraphBuilder('freeu_test');
  const scope = new WeightScope(g, '/test', WeightSet.fromTensors({}, 'no weights'), '');
  const x = g.input('x', 'float32', ['batch', channels, 'height', 'width']);
  g.output(build(scope, x), 'y', 'float32', ['batch', channels, 'height', 'width']);
  return g;
}

test('the Fourier filter operator equals the official FFT filter (direct DFT) on maps of any size', async () => {
  const next = seededUniform(7);
  for (const scale of [0.9, 0.2]) {
    const session = await Session.create(modelToBytes(graphOf((s, x) => buildFourierFilter(s, x, scale), 'channels')));
    try {
      for (const [h, w] of [
        [1, 1],
        [2, 2],
        [3, 5],
        [5, 3],
        [4, 4],
        [8, 6],
        [1, 4],
        [7, 1],
        [2, 3],
      ] as const) {
        const dims = [2, 3, h, w];
        const x = float32(dims, randomFloats(next, 6 * h * w));
        const { y } = await session.run({ x });
        const expected = float32(dims, referenceFourierFilter(x.data, dims, scale));
        expectClose(y!, expected, { atol: 1e-5, rtol: 0, label: `Fourier filter ${h}x${w} scale ${scale}` });
      }
    } finally {
      await session.dispose();
    }
  }
});

test('FreeU scales the first channels of 4*C0 / 2*C0 inputs and leaves other widths alone', async () => {
  const options: FreeUOptions = { b1: 1.2, b2: 1.4, s1: 0.9, s2: 0.2, baseChannels: 2 };
  const next = seededUniform(11);
  const cases: { channels: number; factor: (c: number) => number }[] = [
    { channels: 8, factor: (c) => (c < 4 ? 1.2 : 1) * 0.9 }, // 4*C0: on a 2x2 map the filter is a plain x s1
    { channels: 4, factor: (c) => (c < 2 ? 1.4 : 1) * 0.2 }, // 2*C0
    { channels: 6, factor: () => 1 },
  ];
  for (const { channels, factor } of cases) {
    const session = await Session.create(modelToBytes(graphOf((s, x) => buildFreeU(s, options, x, channels), channels)));
    const x = float32([2, channels, 2, 2], randomFloats(next, 8 * channels));
    const { y } = await session.run({ x });
    await session.dispose();
    const expected = float32(
      x.dims,
      x.data.map((v, i) => v * factor(Math.floor(i / 4) % channels)),
    );
    expectClose(y as Tensor, expected, { atol: 1e-6, rtol: 1e-6, label: `FreeU ${channels} channels` });
  }
});

test('FreeU options are validated', () => {
  assert.throws(() => validateFreeU({ b1: Number.NaN, b2: 1.4, s1: 0.9, s2: 0.2, baseChannels: 320 }), {
    message: 'Expected a finite number for freeu.b1 but received NaN of type number',
  });
  assert.throws(() => validateFreeU({ b1: 1.2, b2: 1.4, s1: 0.9, s2: 0.2, baseChannels: 0 }), {
    message: 'Expected a positive integer for freeu.baseChannels but received 0 of type number',
  });
});
