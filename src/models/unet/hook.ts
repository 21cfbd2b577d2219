/**
 * The attn1 hook point: where the method (feature injection, METHOD.md §4) edits the input of a self-attention.
 *
 * The reference edits `norm_hidden_states` inside its attention processor before `to_q`/`to_k`/`to_v`, so the
 * hook receives norm1's output and its result feeds Q, K and V of that attn1 (the residual is left alone).
 * Sites are keyed by diffusers module path, never by counters or `"up" in name`.
 */
import type { Value } from '../../onnx/graph-builder.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import type { UNetConfig } from '../../config/unet-config.js';

/** One attn1 of the UNet, as the hook sees it. */
export interface Attn1Site {
  /** Diffusers module path, e.g. `up_blocks.2.attentions.0.transformer_blocks.0.attn1`. */
  readonly modulePath: string;
  /** Index of the up block holding this attn1; null in the down and mid blocks. */
  readonly upBlockIndex: number | null;
  /** Token width C of the hidden states [B, HW, C]. */
  readonly channels: number;
  readonly heads: number;
  /** Height of the token map, int64 [1] (tokens are numbered y * width + x). */
  readonly height: Value;
  /** Width of the token map, int64 [1]. */
  readonly width: Value;
}

/** Separate attn1 inputs: `qk` feeds to_q and to_k, `v` feeds to_v (the V-injection ablation edits only `v`). */
export interface Attn1Edit {
  readonly qk: Value;
  readonly v: Value;
}

/**
 * Called once for EVERY attn1 with `hidden` = norm1's output [B, HW, C]; returns the attn1 input [B, HW, C] for
 * Q, K and V (`hidden` itself for sites it leaves alone), or an Attn1Edit with separate inputs. `scope` is the
 * attn1 scope: descend with `scope.sub(name)` for node names; weights, if any, are looked up under the attn1 prefix.
 */
export type Attn1Hook = (scope: WeightScope, site: Attn1Site, hidden: Value) => Value | Attn1Edit;

/** A hook result as separate Q/K and V inputs. */
export function asAttn1Edit(result: Value | Attn1Edit): Attn1Edit {
  return 'qk' in result ? result : { qk: result, v: result };
}

/** What a UNet block passes down so its transformer blocks can reach the hook. */
export interface Attn1HookPoint {
  readonly hook: Attn1Hook;
  readonly upBlockIndex: number | null;
}

/** Every attn1 module path of a UNet built from `config`, in execution order (down, mid, up). */
export function attn1ModulePaths(config: UNetConfig): string[] {
  const paths: string[] = [];
  const transformer = (prefix: string, layers: number): void => {
    for (let k = 0; k < layers; k++) paths.push(`${prefix}.transformer_blocks.${k}.attn1`);
  };
  const n = config.blockOutChannels.length;
  config.downBlockTypes.forEach((type, i) => {
    if (type !== 'CrossAttnDownBlock2D') return;
    for (let j = 0; j < config.layersPerBlock; j++) transformer(`down_blocks.${i}.attentions.${j}`, config.transformerLayersPerBlock[i]!);
  });
  transformer('mid_block.attentions.0', config.transformerLayersPerBlock[n - 1]!);
  config.upBlockTypes.forEach((type, i) => {
    if (type !== 'CrossAttnUpBlock2D') return;
    for (let j = 0; j <= config.layersPerBlock; j++) transformer(`up_blocks.${i}.attentions.${j}`, config.transformerLayersPerBlock[n - 1 - i]!);
  });
  return paths;
}
