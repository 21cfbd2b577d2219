import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifierFreeGuidance } from '../../src/diffusion/guidance.js';

describe('classifierFreeGuidance', () => {
  it('is uncond + scale * (cond - uncond)', () => {
    const out = classifierFreeGuidance(Float32Array.from([1, -2, 0.5]), Float32Array.from([3, -1, 0.5]), 2.5);
    assert.deepEqual(Array.from(out), [6, 0.5, 0.5]);
  });

  it('scale 1 returns cond and scale 0 returns uncond', () => {
    const u = Float32Array.from([0.1, 0.2]);
    const c = Float32Array.from([0.7, -0.4]);
    classifierFreeGuidance(u, c, 1).forEach((v, i) => assert.ok(Math.abs(v - (c[i] ?? 0)) < 1e-7)); // u + (c - u): rounding only
    assert.deepEqual(Array.from(classifierFreeGuidance(u, c, 0)), Array.from(u));
  });

  it('rounds like torch float32 ops', () => {
    const u = Float32Array.from([0.1]);
    const c = Float32Array.from([0.3]);
    const f = Math.fround;
    assert.equal(classifierFreeGuidance(u, c, 3.5)[0], f(f(0.1) + f(f(3.5) * f(f(0.3) - f(0.1)))));
  });

  it('rejects different lengths', () => {
    assert.throws(
      () => classifierFreeGuidance(new Float32Array(2), new Float32Array(3), 2),
      /Expected 2 \(the length of uncond\) for cond.length but received 3/,
    );
  });
});
