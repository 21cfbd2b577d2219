/**
 * Group `nonsquare` (cases with SD-2-style models add it): the plain/FreeU UNet and the VAE on non-square inputs.
 * Its outputs mirror the top-level groups under a `nonsquare.` prefix (`nonsquare.unet_plain.out`,
 * `nonsquare.vae.encode.latent`, ...) and run through the same code; their inputs come from the resolver, which reads
 * io.json's meanings/params (the case may reuse `unet.timestep` / `unet.encoder_hidden_states`, or give the VAE a
 * uint8 HWC image) and tries `nonsquare.<usual name>` before the top-level tensor.
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { groupOf } from '../golden-case.js';
import type { GoldenContext } from '../runner.js';
import { eachOutput } from './common.js';
import { runPlainUNetOutput } from './unet.js';
import { runVaeOutput } from './vae.js';

export async function runNonsquareGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  return eachOutput(ctx, ctx.outputs(group), async (name) => {
    const inner = groupOf(name.slice(group.length + 1));
    if (inner === 'unet_plain' || inner === 'unet_freeu') return runPlainUNetOutput(ctx, name, inner === 'unet_freeu', group);
    if (inner === 'vae') return runVaeOutput(ctx, name, group);
    throw new GoldenError(`${name}: no implementation for this tensor of group ${group} (it mirrors unet_plain, unet_freeu and vae)`);
  });
}
