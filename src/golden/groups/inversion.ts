/**
 * Group `inversion`: edit-friendly DDPM inversion of both images (our VAE encoding of the documented input image,
 * the case's recorded noise draws, the FreeU UNet) -> `inversion.{app,struct}.{zs,wts}`.
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { invertImage } from '../engine.js';
import { latentRowsRole, resolveInput, vaeImageRole } from '../inputs.js';
import type { GoldenContext } from '../runner.js';
import { hookedSites, noteInputs, paramNumber, runConfigNumber, runConfigString, stacked } from './common.js';

export async function runInversionGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const { golden } = ctx;
  const engine = ctx.model();
  const out: Record<string, Tensor> = {};
  for (const which of ['app', 'struct'] as const) {
    const names = ctx.outputs(group).filter((n) => n.startsWith(`${group}.${which}.`));
    if (names.length === 0) continue;
    // The zs entry documents the call (x0, steps, guidance, prompt); any output of the image will do otherwise.
    const anchor = names.find((n) => n === `${group}.${which}.zs`) ?? names[0]!;
    const params = golden.tensors[anchor]?.params ?? {};
    const numSteps = paramNumber(ctx, anchor, 'num_diffusion_steps', () => runConfigNumber(ctx, 'num_timesteps'));
    const guidanceScale = paramNumber(ctx, anchor, 'cfg_scale_src', () => 3.5);
    const prompt = typeof params['prompt_src'] === 'string' ? params['prompt_src'] : runConfigString(ctx, 'prompt');
    // Latent shape [C, h, w] from the zs / wts entries, when the case lists them.
    const rowsMeta = golden.tensors[`${group}.${which}.zs`] ?? golden.tensors[`${group}.${which}.wts`];
    const latent = rowsMeta?.shape.slice(1);
    const image = resolveInput(
      golden,
      vaeImageRole(engine.facts, latent === undefined ? undefined : [1, ...latent], [`inputs.image_${which}`, `inputs.image_${which}_uint8`]),
      { anchor },
    );
    const noise = resolveInput(golden, latentRowsRole(engine.facts, 'inversion noise draws', numSteps, latent, [`${group}.${which}.noise`]), { anchor });
    noteInputs(ctx, anchor, { image, noise });
    const result = await invertImage(engine, { image: image.value, noise: noise.value, prompt, numSteps, guidanceScale, sites: await hookedSites(ctx) });
    if (result.zs.length !== numSteps) throw new GoldenError(`${anchor}: inversion gave ${result.zs.length} noise maps, expected ${numSteps}`);
    out[`${group}.${which}.zs`] = stacked(result.zs, result.latentDims);
    out[`${group}.${which}.wts`] = stacked(result.xts, result.latentDims);
  }
  return out;
}
