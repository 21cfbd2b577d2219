import { StableDiffusionModel } from './dist/src/runtime/stable-diffusion.js';
import { e4eFeeds, injectionSlots, matchesOf } from './dist/src/methods/eye-for-an-eye/controls.js';
import { e4eUNetVariant } from './dist/src/methods/eye-for-an-eye/index.js';
const t0 = performance.now();
const model = StableDiffusionModel.open(process.env.HOME + '/.cache/eye4eye/bench-models/sd15-random', { device: 'webgpu', cacheDir: '/tmp/wgpu-b6-cache', memoryArena: false, onStatus: (s) => console.log('status', s) });
const unet = await model.unet(e4eUNetVariant(model.unetConfig));
console.log('session', ((performance.now() - t0) / 1000).toFixed(1), 's');
const b = 6, n = b * 4 * 64 * 64;
const sample = { dtype: 'float32', dims: [b, 4, 64, 64], data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)) };
const ehs = { dtype: 'float32', dims: [b, 77, 768], data: Float32Array.from({ length: b * 77 * 768 }, (_, i) => Math.cos(i * 0.11)) };
for (const mode of ['off', 'match']) {
  const t = performance.now();
  const r = await unet.call({ sample, timestep: 501, encoderHiddenStates: ehs, feeds: e4eFeeds({ mode, slots: injectionSlots(true) }, unet.info.processed, b) });
  const finite = r.noise.data.every(Number.isFinite);
  const matched = Object.values(matchesOf(r.outputs, unet.info.processed)).reduce((a, m) => a + m.filter((x) => x >= 0n).length, 0);
  console.log(`UNet batch 6 at 512x512 on WebGPU (${mode}): ${((performance.now() - t) / 1000).toFixed(1)} s, finite ${finite}, matched tokens ${matched}, dims ${r.noise.dims}, peak RSS ${(process.resourceUsage().maxRSS / 1048576).toFixed(2)} GB`);
}
await model.dispose();
