/**
 * Group `inversion`: edit-friendly DDPM inversion of both images (our VAE encoding of the case's input image, the
 * case's recorded noise draws, the FreeU UNet) -> `inversion.{app,struct}.{zs,wts}`.
 */
import { ddimSchedule } from '../../diffusion/ddim-schedule.js';
import { GoldenError } from '../../errors.js';
import { guidedUNetNoise, invert, toInversionLatent } from '../../diffusion/inversion.js';
import { sliceFirst, type Tensor } from '../../tensor/tensor.js';
import type { GoldenContext } from '../runner.js';
import { e4eUNet, floatTensor, stacked } from './unet.js';

export function runConfigString(ctx: GoldenContext, key: string): string {
  const v = ctx.golden.runConfig[key];
  if (typeof v !== 'string') throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be a string`);
  return v;
}

export function runConfigNumber(ctx: GoldenContext, key: string): number {
  const v = ctx.golden.runConfig[key];
  if (typeof v !== 'number') throw new GoldenError(`${ctx.golden.dir}: io.json run_config.${key} must be a number`);
  return v;
}

export async function runInversionGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const model = ctx.model();
  const out: Record<string, Tensor> = {};
  for (const which of ['app', 'struct'] as const) {
    const names = ctx.outputs(group).filter((n) => n.startsWith(`inversion.${which}.`));
    if (names.length === 0) continue;
    const params = ctx.golden.tensors[`inversion.${which}.zs`]?.params ?? {};
    const numSteps = typeof params['num_diffusion_steps'] === 'number' ? params['num_diffusion_steps'] : runConfigNumber(ctx, 'num_timesteps');
    const guidance = typeof params['cfg_scale_src'] === 'number' ? params['cfg_scale_src'] : 3.5;
    const prompt = typeof params['prompt_src'] === 'string' ? params['prompt_src'] : runConfigString(ctx, 'prompt');
    const image = floatTensor(ctx, `inputs.image_${which}`);
    const x0 = toInversionLatent(await model.encodeImage(image), model.vaeConfig.scalingFactor);
    const noise = floatTensor(ctx, `inversion.${which}.noise`);
    const draws = Array.from({ length: noise.dims[0]! }, (_, i) => Float32Array.from(sliceFirst(noise, i).data));
    const predict = guidedUNetNoise(await e4eUNet(ctx), await model.encodeText(['', prompt]));
    const result = await invert(x0, ddimSchedule(model.schedulerConfig), predict, { numSteps, guidanceScale: guidance, noise: draws });
    const dims = x0.dims.slice(1);
    out[`inversion.${which}.zs`] = stacked(result.zs, dims);
    out[`inversion.${which}.wts`] = stacked(result.xts, dims);
  }
  return out;
}
