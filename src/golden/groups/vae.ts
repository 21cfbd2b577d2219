/** Group `vae`: encode `inputs.image_app` to the scaled latent mean; decode `vae.decode.latent`. */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GoldenContext } from '../runner.js';

function floatInput(ctx: GoldenContext, names: readonly string[]): Tensor<'float32'> {
  for (const name of names) {
    if (ctx.golden.has(name)) {
      const t = ctx.golden.get(name);
      if (t.dtype !== 'float32') throw new GoldenError(`${name}: expected float32, got ${t.dtype}`);
      return t as Tensor<'float32'>;
    }
  }
  throw new GoldenError(`${ctx.golden.dir}: none of the inputs ${names.join(', ')} is in the case`);
}

/** The scaling factor the case used for a tensor (the reference hard-codes 0.18215 when encoding; docs/method.md quirk 13). */
function caseScale(ctx: GoldenContext, name: string, fallback: number): number {
  const v = ctx.golden.tensors[name]?.params?.['scaling_factor'];
  return typeof v === 'number' ? v : fallback;
}

function rescale(t: Tensor<'float32'>, ratio: number): Tensor<'float32'> {
  return ratio === 1 ? t : { dtype: 'float32', dims: t.dims, data: t.data.map((v) => Math.fround(v * ratio)) };
}

/** Runs for `vae` and for namespaced copies such as `nonsquare.vae.*` (prefix = 'nonsquare.'). */
export async function runVaeTensors(ctx: GoldenContext, prefix: string, names: readonly string[]): Promise<Record<string, Tensor>> {
  const model = ctx.model();
  const out: Record<string, Tensor> = {};
  const configScale = model.vaeConfig.scalingFactor;
  if (names.includes(`${prefix}vae.encode.latent`)) {
    const image = floatInput(ctx, [`${prefix}vae.encode.image`, `${prefix}inputs.image_app`, `${prefix}vae.encode.sample`, 'inputs.image_app']);
    const latent = await model.encodeImage(image);
    out[`${prefix}vae.encode.latent`] = rescale(latent, caseScale(ctx, `${prefix}vae.encode.latent`, configScale) / configScale);
  }
  if (names.includes(`${prefix}vae.decode.image`)) {
    const latent = floatInput(ctx, [`${prefix}vae.decode.latent`]);
    out[`${prefix}vae.decode.image`] = await model.decodeLatent(rescale(latent, configScale / caseScale(ctx, `${prefix}vae.decode.image`, configScale)));
  }
  return out;
}

export async function runVaeGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  return runVaeTensors(ctx, '', ctx.outputs(group));
}
