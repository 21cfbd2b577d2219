/**
 * Group `vae` (and mirrored copies such as `nonsquare.vae.*`): `vae.encode.latent` = the scaled latent mean of the
 * documented input image (float NCHW in [-1, 1], or uint8 HWC converted as documented); `vae.decode.image` = the raw
 * decoded image of the documented latent.
 */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { decodeLatent, encodeImage } from '../engine.js';
import { resolveInput, vaeImageRole, vaeLatentRole } from '../inputs.js';
import type { GoldenContext } from '../runner.js';
import { eachOutput, noteInputs } from './common.js';

/** The scaling factor the case used for a tensor (the reference hard-codes 0.18215 when encoding; docs/method.md quirk 13). */
function caseScale(ctx: GoldenContext, name: string, fallback: number): number {
  const v = ctx.golden.tensors[name]?.params?.['scaling_factor'];
  return typeof v === 'number' ? v : fallback;
}

function rescale(t: Tensor<'float32'>, ratio: number): Tensor<'float32'> {
  return ratio === 1 ? t : { dtype: 'float32', dims: t.dims, data: t.data.map((v) => Math.fround(v * ratio)) };
}

export async function runVaeEncode(ctx: GoldenContext, name: string, namespace?: string): Promise<Tensor> {
  const engine = ctx.model();
  const image = resolveInput(
    ctx.golden,
    vaeImageRole(engine.facts, ctx.golden.tensors[name]?.shape, ['vae.encode.image', 'inputs.image_app', 'inputs.image_app_uint8']),
    { anchor: name, namespace },
  );
  noteInputs(ctx, name, { image });
  const configScale = engine.facts.vaeScalingFactor;
  return rescale(await encodeImage(engine, image.value), caseScale(ctx, name, configScale) / configScale);
}

export async function runVaeDecode(ctx: GoldenContext, name: string, namespace?: string): Promise<Tensor> {
  const engine = ctx.model();
  const latent = resolveInput(ctx.golden, vaeLatentRole(engine.facts, ctx.golden.tensors[name]?.shape, ['vae.decode.latent']), { anchor: name, namespace });
  noteInputs(ctx, name, { latent });
  const configScale = engine.facts.vaeScalingFactor;
  return decodeLatent(engine, rescale(latent.value, configScale / caseScale(ctx, name, configScale)));
}

/** The VAE output `name` (`vae.encode.*` / `vae.decode.*` once the mirror namespace is taken off). */
export async function runVaeOutput(ctx: GoldenContext, name: string, namespace?: string): Promise<Tensor> {
  const inner = namespace === undefined ? name : name.slice(namespace.length + 1);
  if (inner.startsWith('vae.encode.')) return runVaeEncode(ctx, name, namespace);
  if (inner.startsWith('vae.decode.')) return runVaeDecode(ctx, name, namespace);
  throw new GoldenError(`${name}: no implementation for this VAE tensor (expected vae.encode.* or vae.decode.*)`);
}

export async function runVaeGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  return eachOutput(ctx, ctx.outputs(group), (name) => runVaeOutput(ctx, name));
}
