/**
 * Attention processors: how a method acts inside the UNet's Attention modules, chosen per module by its diffusers
 * module path (diffusers' `set_attn_processor` registry, keyed by `{path}.processor`).
 *
 * A processor may
 *   - edit the sources of to_q / to_k / to_v (the hidden states, or the context of a cross-attention),
 *   - edit Q, K and V after the projections,
 *   - compute the attention itself (instead of com.microsoft.MultiHeadAttention),
 * and it declares up front the graph inputs it reads (with the neutral value that makes it a no-op) and the graph
 * outputs it writes. The UNet builder records every Attention it builds as an AttentionSite, so no caller re-derives
 * the topology: the sites come back with the graph (and are kept with the graph in the cache).
 */
import { ModelBuildError } from '../../errors.js';
import type { Dim, GraphBuilder, Value } from '../../onnx/graph-builder.js';
import type { OnnxElemType } from '../../onnx/proto.js';
import type { WeightScope } from '../../onnx/weight-scope.js';
import { formatDims, type Tensor } from '../../tensor/tensor.js';
import type { QKV } from '../nn/scaled-dot-product-attention.js';

export type UNetBlockKind = 'down' | 'mid' | 'up';

/** One Attention module of the UNet, as it was built. */
export interface AttentionSite {
  /** Diffusers module path, e.g. `up_blocks.2.attentions.0.transformer_blocks.0.attn1`. */
  readonly modulePath: string;
  /** attn1 is self-attention, attn2 attends to the encoder hidden states. */
  readonly kind: 'self' | 'cross';
  /** The UNet block holding it: down_blocks.i, mid_block (index 0) or up_blocks.i. */
  readonly block: UNetBlockKind;
  readonly blockIndex: number;
  /**
   * Resolution level: the token map is the latent map downsampled `level` times (each time to ceil(n / 2), as
   * Downsample2D's stride-2 convolution with padding 1 does). See tokenMapSize.
   */
  readonly level: number;
  /** Width C of the hidden states [B, HW, C] (= heads x head_dim). */
  readonly channels: number;
  readonly heads: number;
}

/** Height and width of a site's token map for a latent of `latent` (tokens are numbered y * width + x). */
export function tokenMapSize(site: Pick<AttentionSite, 'level'>, latent: { height: number; width: number }): { height: number; width: number } {
  let { height, width } = latent;
  for (let i = 0; i < site.level; i++) {
    height = Math.ceil(height / 2);
    width = Math.ceil(width / 2);
  }
  return { height, width };
}

/** A graph input or output a processor declares. */
export interface GraphIO {
  readonly name: string;
  readonly dtype: OnnxElemType;
  readonly dims: readonly Dim[];
}

/** A graph input with the value that leaves its processor without effect (fed when a caller gives none). */
export interface ProcessorInput extends GraphIO {
  readonly neutral: Tensor;
}

/** Sources of to_q, to_k, to_v (before projection), or Q, K, V (after): [B, S, C], [B, T, Ck], [B, T, Ck]. */
export type { QKV };

/** What a processor sees while its site is built. */
export interface ProcessorContext {
  /** The Attention module's scope: descend with `scope.sub(name)` for node names. */
  readonly scope: WeightScope;
  readonly site: AttentionSite;
  /** Height and width of the query token map, int64 [1] each. */
  readonly height: Value;
  readonly width: Value;
  /** A graph input the processor declared. */
  input(name: string): Value;
  /** Writes a graph output the processor declared (once). */
  output(name: string, value: Value): void;
}

export interface AttentionProcessor {
  readonly inputs?: readonly ProcessorInput[];
  readonly outputs?: readonly GraphIO[];
  /** Edit the sources of the projections (for self-attention q, k and v all start as the hidden states). */
  editSources?(ctx: ProcessorContext, sources: QKV): QKV;
  /** Edit Q, K, V after to_q / to_k / to_v. */
  editProjections?(ctx: ProcessorContext, qkv: QKV): QKV;
  /** softmax(q k^T / sqrt(d)) v computed by the processor: [B, S, C]. Absent: MultiHeadAttention. */
  attend?(ctx: ProcessorContext, qkv: QKV): Value;
}

/** Which Attention modules get a processor. */
export interface ProcessorPlan {
  /** The processor of a site, or undefined for stock attention. */
  choose(site: AttentionSite): AttentionProcessor | undefined;
  /** Module paths that must exist and get a processor (else the build fails, naming the sites there are). */
  required?: readonly string[];
}

/** A processor bound to its site while the site is built. */
export interface BoundProcessor {
  readonly processor: AttentionProcessor;
  context(scope: WeightScope, height: Value, width: Value): ProcessorContext;
  /** Checks that every declared output was written. */
  done(): void;
}

function sameIO(a: GraphIO, b: GraphIO): boolean {
  return a.dtype === b.dtype && a.dims.length === b.dims.length && a.dims.every((d, i) => d === b.dims[i]);
}

/**
 * The UNet builder's side of the registry: records every site, declares processor inputs once per graph (processors
 * of several sites may share an input, with the same type and shape), and checks declared outputs.
 */
export class ProcessorHost {
  readonly sites: AttentionSite[] = [];
  /** Module paths that got a processor, in build order. */
  readonly processed: string[] = [];
  private readonly declaredInputs = new Map<string, { io: ProcessorInput; value: Value }>();
  private readonly declaredOutputs = new Set<string>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly plan: ProcessorPlan | undefined,
  ) {}

  /** Every input a processor declared, with its neutral value. */
  get inputs(): ProcessorInput[] {
    return [...this.declaredInputs.values()].map((d) => d.io);
  }

  /** Register a site as it is built; returns its processor, if the plan gives it one. */
  enter(site: AttentionSite): BoundProcessor | undefined {
    if (this.sites.some((s) => s.modulePath === site.modulePath)) throw new ModelBuildError(`attention site ${site.modulePath} built twice`);
    this.sites.push(site);
    const processor = this.plan?.choose(site);
    if (processor === undefined) return undefined;
    this.processed.push(site.modulePath);
    const inputs = new Map<string, Value>();
    for (const io of processor.inputs ?? []) inputs.set(io.name, this.declareInput(site, io));
    const outputs = new Map((processor.outputs ?? []).map((o) => [o.name, o]));
    const written = new Set<string>();
    for (const name of outputs.keys()) {
      if (this.declaredOutputs.has(name))
        throw new ModelBuildError(`${site.modulePath}: graph output '${name}' is declared by another attention processor too`);
      this.declaredOutputs.add(name);
    }
    return {
      processor,
      context: (scope, height, width) => ({
        scope,
        site,
        height,
        width,
        input: (name) => {
          const v = inputs.get(name);
          if (v === undefined) throw new ModelBuildError(`${site.modulePath}: the processor reads graph input '${name}' it did not declare`);
          return v;
        },
        output: (name, value) => {
          const io = outputs.get(name);
          if (io === undefined) throw new ModelBuildError(`${site.modulePath}: the processor writes graph output '${name}' it did not declare`);
          if (written.has(name)) throw new ModelBuildError(`${site.modulePath}: graph output '${name}' written twice`);
          written.add(name);
          this.g.output(value, name, io.dtype, io.dims);
        },
      }),
      done: () => {
        const missing = [...outputs.keys()].filter((n) => !written.has(n));
        if (missing.length > 0)
          throw new ModelBuildError(`${site.modulePath}: the processor declared graph output(s) ${missing.join(', ')} but never wrote them`);
      },
    };
  }

  /** After the build: every required module path exists and got a processor. */
  finish(): void {
    const required = this.plan?.required ?? [];
    const absent = required.filter((p) => !this.sites.some((s) => s.modulePath === p));
    if (absent.length > 0) {
      // Name the modules of the same kind (attn1 / attn2) the UNet does have.
      const kinds = new Set(absent.map((p) => p.slice(p.lastIndexOf('.') + 1)));
      const like = this.sites.filter((s) => kinds.has(s.modulePath.slice(s.modulePath.lastIndexOf('.') + 1))).map((s) => s.modulePath);
      throw new ModelBuildError(
        `no attention module at ${absent.join(', ')} (${[...kinds].join('/')} modules of this UNet: ${(like.length > 0 ? like : this.sites.map((s) => s.modulePath)).join(', ')})`,
      );
    }
    const skipped = required.filter((p) => !this.processed.includes(p));
    if (skipped.length > 0) throw new ModelBuildError(`attention processor plan gave no processor to required site(s) ${skipped.join(', ')}`);
  }

  private declareInput(site: AttentionSite, io: ProcessorInput): Value {
    const known = this.declaredInputs.get(io.name);
    if (known !== undefined) {
      if (!sameIO(known.io, io)) {
        throw new ModelBuildError(
          `${site.modulePath}: graph input '${io.name}' declared as ${io.dtype}${formatDims(io.dims)}, ` +
            `but another processor declared it as ${known.io.dtype}${formatDims(known.io.dims)}`,
        );
      }
      return known.value;
    }
    const value = this.g.input(io.name, io.dtype, io.dims);
    this.declaredInputs.set(io.name, { io, value });
    return value;
  }
}

/** Where the transformer blocks of a Transformer2DModel sit in the UNet (what their sites record). */
export interface SiteLocation {
  readonly block: UNetBlockKind;
  readonly blockIndex: number;
  readonly level: number;
}

/** What a UNet block passes down so that its Attention modules register with the host. */
export interface AttentionHostPoint {
  readonly host: ProcessorHost;
  readonly location: SiteLocation;
  /** Tokens of this level's map at the model's native latent size (sample_size): what attention chunking plans for. */
  readonly expectedTokens: number;
}
