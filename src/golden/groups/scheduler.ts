/** Group `scheduler`: alphas_cumprod, final_alpha_cumprod and set_timesteps(N) for every N the case lists. */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { schedulerTables } from '../engine.js';
import type { GoldenContext } from '../runner.js';

export async function runSchedulerGroup(ctx: GoldenContext, group: string): Promise<Record<string, Tensor>> {
  const schedule = schedulerTables(ctx.model());
  const out: Record<string, Tensor> = {
    'scheduler.alphas_cumprod': { dtype: 'float32', dims: [schedule.numTrainTimesteps], data: schedule.alphasCumprod },
    'scheduler.final_alpha_cumprod': { dtype: 'float32', dims: [1], data: Float32Array.of(schedule.finalAlphaCumprod) },
  };
  for (const name of ctx.outputs(group)) {
    const match = /^scheduler\.timesteps_(\d+)$/.exec(name);
    if (match === null) continue;
    const fromParams = ctx.golden.tensors[name]?.params?.['num_inference_steps'];
    const steps = typeof fromParams === 'number' ? fromParams : Number(match[1]);
    if (!Number.isInteger(steps)) throw new GoldenError(`${name}: cannot tell the number of inference steps`);
    const ts = schedule.timesteps(steps);
    out[name] = { dtype: 'int64', dims: [ts.length], data: BigInt64Array.from(ts.map((t) => BigInt(t))) };
  }
  return out;
}
