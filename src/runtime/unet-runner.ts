/**
 * A typed call of the UNet graph: {sample, timestep, encoder_hidden_states, e4e controls} -> noise prediction and
 * the match indices of the hooked sites.
 */
import { InvalidParameterError } from '../errors.js';
import { E4E_INPUT, E4E_MODE, E4E_OUTPUT, type E4EMode } from '../models/unet/feature-injection.js';
import { formatDims, type Tensor } from '../tensor/tensor.js';
import type { Session } from './session.js';

export interface E4EControls {
  readonly mode: E4EMode;
  /** [matchOut, matchStyle, copyOut, copySource, vOut, vStyle] rows of the batch (transfer/slots.ts). */
  readonly slots: readonly number[];
  /** Structure / appearance masks [H, W] at any size; absent = no mask. */
  readonly maskStruct?: Tensor<'float32'> | undefined;
  readonly maskApp?: Tensor<'float32'> | undefined;
  /** Forced matches per site (token -> style token, < 0 keeps the token); sites absent use the argmax. */
  readonly forced?: Readonly<Record<string, BigInt64Array>> | undefined;
}

export interface UNetCall {
  /** [B, C, h, w] latents. */
  readonly sample: Tensor<'float32'>;
  readonly timestep: number;
  /** [B, T, D] text embeddings. */
  readonly encoderHiddenStates: Tensor<'float32'>;
  readonly e4e?: E4EControls | undefined;
}

export interface UNetResult {
  /** [B, C, h, w] */
  readonly noise: Tensor<'float32'>;
  /** Per hooked site: the style token each out token took (-1 masked out, -2 no matching in this call). */
  readonly matches: Readonly<Record<string, BigInt64Array>>;
}

const ONES: Tensor<'float32'> = { dtype: 'float32', dims: [1, 1], data: Float32Array.of(1) };

export class UNetRunner {
  constructor(private readonly session: Session, readonly sites: readonly string[]) {}

  async call(call: UNetCall): Promise<UNetResult> {
    const b = call.sample.dims[0];
    if (call.sample.dims.length !== 4 || call.encoderHiddenStates.dims[0] !== b) {
      throw new InvalidParameterError(`UNet call: sample ${formatDims(call.sample.dims)} and encoder_hidden_states ${formatDims(call.encoderHiddenStates.dims)} must share the batch size`);
    }
    const feeds: Record<string, Tensor> = {
      sample: call.sample,
      timestep: { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(call.timestep)) },
      encoder_hidden_states: call.encoderHiddenStates,
    };
    if (this.sites.length > 0) {
      const e4e = call.e4e ?? { mode: 'off' as const, slots: [0, 0, 0, 0, 0, 0] };
      if (e4e.slots.length !== 6 || e4e.slots.some((s) => !Number.isInteger(s) || s < 0 || s >= (b ?? 0))) {
        throw new InvalidParameterError(`UNet call: e4e slots [${e4e.slots.join(', ')}] must be 6 batch rows in [0, ${b})`);
      }
      feeds[E4E_INPUT.mode] = { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(E4E_MODE[e4e.mode])) };
      feeds[E4E_INPUT.slots] = { dtype: 'int64', dims: [6], data: BigInt64Array.from(e4e.slots.map(BigInt)) };
      feeds[E4E_INPUT.maskStruct] = e4e.maskStruct ?? ONES;
      feeds[E4E_INPUT.maskApp] = e4e.maskApp ?? ONES;
      if ((e4e.maskStruct === undefined) !== (e4e.maskApp === undefined)) {
        // One mask alone: the other image is taken whole (all ones at the same size).
        const given = (e4e.maskStruct ?? e4e.maskApp)!;
        const ones: Tensor<'float32'> = { dtype: 'float32', dims: given.dims, data: new Float32Array(given.data.length).fill(1) };
        if (e4e.maskStruct === undefined) feeds[E4E_INPUT.maskStruct] = ones;
        else feeds[E4E_INPUT.maskApp] = ones;
      }
      for (const site of this.sites) {
        const forced = e4e.forced?.[site];
        feeds[E4E_INPUT.forced(site)] = { dtype: 'int64', dims: [forced?.length ?? 0], data: forced ?? new BigInt64Array(0) };
      }
    }
    const out = await this.session.run(feeds);
    const matches: Record<string, BigInt64Array> = {};
    for (const site of this.sites) matches[site] = out[E4E_OUTPUT.match(site)]!.data as BigInt64Array;
    return { noise: out['out_sample'] as Tensor<'float32'>, matches };
  }
}
