/**
 * A call of a UNet graph: sample, timestep and encoder hidden states, plus named feeds for the attention processors
 * the graph was built with; returns the noise prediction and the processors' named outputs. The runner knows the
 * graph's attention sites and the processors' inputs (kept with the graph in the cache), and feeds every processor
 * input the caller leaves out with its neutral value, so a call without feeds is the stock UNet.
 */
import { InvalidParameterError } from '../errors.js';
import type { AttentionSite } from '../models/unet/attention-processor.js';
import { formatDims, type Tensor } from '../tensor/tensor.js';
import type { Feeds, Session } from './session.js';

export interface UNetCall {
  /** [B, C, h, w] latents. */
  readonly sample: Tensor<'float32'>;
  readonly timestep: number;
  /** [B, T, D] text embeddings. */
  readonly encoderHiddenStates: Tensor<'float32'>;
  /** Processor inputs by name (absent ones get their neutral value). */
  readonly feeds?: Feeds | undefined;
}

export interface UNetResult {
  /** [B, C, h, w] */
  readonly noise: Tensor<'float32'>;
  /** The processors' outputs by name. */
  readonly outputs: Readonly<Record<string, Tensor>>;
}

/** What the runner knows about its graph (from the build, or from the cache entry). */
export interface UNetGraphInfo {
  /** Every Attention module of the UNet, in execution order. */
  readonly sites: readonly AttentionSite[];
  /** Module paths that got a processor. */
  readonly processed: readonly string[];
  /** Processor inputs and their neutral feeds. */
  readonly neutralFeeds: Feeds;
}

const UNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states'] as const;

export class UNetRunner {
  constructor(
    private readonly session: Session,
    readonly info: UNetGraphInfo,
  ) {}

  get sites(): readonly AttentionSite[] {
    return this.info.sites;
  }

  /** The site of a module path (error naming the sites there are). */
  site(modulePath: string): AttentionSite {
    const site = this.info.sites.find((s) => s.modulePath === modulePath);
    if (site === undefined)
      throw new InvalidParameterError(`no attention module '${modulePath}' in this UNet (it has: ${this.info.sites.map((s) => s.modulePath).join(', ')})`);
    return site;
  }

  async call(call: UNetCall): Promise<UNetResult> {
    const b = call.sample.dims[0];
    if (call.sample.dims.length !== 4 || call.encoderHiddenStates.dims[0] !== b) {
      throw new InvalidParameterError(
        `UNet call: sample ${formatDims(call.sample.dims)} and encoder_hidden_states ${formatDims(call.encoderHiddenStates.dims)} must share the batch size`,
      );
    }
    const given = call.feeds ?? {};
    const unknown = Object.keys(given).filter((n) => !(n in this.info.neutralFeeds));
    if (unknown.length > 0) {
      const known = Object.keys(this.info.neutralFeeds);
      throw new InvalidParameterError(`UNet call: feed(s) ${unknown.join(', ')} are no input of this graph (processor inputs: ${known.join(', ') || 'none'})`);
    }
    const clash = UNET_INPUTS.filter((n) => n in given);
    if (clash.length > 0) throw new InvalidParameterError(`UNet call: ${clash.join(', ')} must be given as sample / timestep / encoderHiddenStates`);
    const out = await this.session.run({
      ...this.info.neutralFeeds,
      ...given,
      sample: call.sample,
      timestep: { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(call.timestep)) },
      encoder_hidden_states: call.encoderHiddenStates,
    });
    const { out_sample: noise, ...outputs } = out;
    return { noise: noise as Tensor<'float32'>, outputs };
  }
}
