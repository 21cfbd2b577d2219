/**
 * Group `nonsquare` (cases with SD-2-style models add it): the plain/FreeU UNet and the VAE on non-square inputs.
 * Its tensors mirror the top-level groups under a `nonsquare.` prefix; inputs are found by role and name ending
 * (`...sample`, `...timestep`, `...encoder_hidden_states`, an image for the VAE encoder, a latent for the decoder).
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GoldenContext } from '../runner.js';

const PREFIX = 'nonsquare.';

function findInput(ctx: GoldenContext, test: (name: string, dims: readonly number[]) => boolean, what: string): Tensor<'float32'> | Tensor<'int64'> {
  const names = Object.keys(ctx.golden.tensors).filter((n) => n.startsWith(PREFIX) && ctx.golden.tensors[n]?.role === 'input');
  const found = names.find((n) => test(n, ctx.golden.tensors[n]!.shape));
  if (found === undefined) throw new GoldenError(`${ctx.golden.dir}: no ${what} input among ${names.join(', ') || 'the nonsquare tensors'}`);
  return ctx.golden.get(found) as Tensor<'float32'>;
}

export async function runNonsquareGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const model = ctx.model();
  const out: Record<string, Tensor> = {};
  for (const name of ctx.outputs(group)) {
    const inner = name.slice(PREFIX.length);
    if (/^unet_(plain|freeu)\./.test(inner)) {
      const sample = findInput(ctx, (n, d) => /sample$/.test(n) && /unet/.test(n) && d.length === 4, 'UNet sample') as Tensor<'float32'>;
      const timestep = findInput(ctx, (n) => /timestep$/.test(n), 'timestep');
      const context = findInput(ctx, (n) => /encoder_hidden_states$/.test(n), 'encoder_hidden_states') as Tensor<'float32'>;
      const unet = await model.unet({ freeu: inner.startsWith('unet_freeu') });
      out[name] = (await unet.call({ sample, timestep: Number(timestep.data[0]), encoderHiddenStates: context })).noise;
    } else if (/^vae\.encode\./.test(inner)) {
      const image = findInput(ctx, (n, d) => d.length === 4 && d[1] === 3 && /image|sample/.test(n), 'VAE image') as Tensor<'float32'>;
      out[name] = await model.encodeImage(image);
    } else if (/^vae\.decode\./.test(inner)) {
      const latent = findInput(ctx, (n, d) => d.length === 4 && /decode/.test(n) && /latent/.test(n), 'VAE latent') as Tensor<'float32'>;
      out[name] = await model.decodeLatent(latent);
    } else {
      throw new GoldenError(`no implementation for tensor '${name}'`);
    }
  }
  return out;
}
