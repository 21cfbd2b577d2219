/**
 * WeightSet + WeightScope: how model blocks get their weights.
 *
 * A block asks `scope.weight('conv1.weight', [out, in, 3, 3])`; the scope prefixes the diffusers name
 * (`up_blocks.1.resnets.0.conv1.weight`), checks presence and shape, records the use, and returns an initializer
 * that carries the verbatim diffusers name and points into the weights file (no copy). After a build every tensor of
 * the file must have been used or be listed as deliberately ignored (checked in both directions).
 * Float16/bfloat16 weights get a Cast node to float32 on the verbatim initializer.
 */
import { ModelBuildError, WeightMissingError, WeightShapeError, WeightUnusedError } from '../errors.js';
import { formatDims, sameDims, type DType, type Tensor } from '../tensor/tensor.js';
import type { TensorSource } from '../io/safetensors.js';
import { Scope, tensorBytes, type GraphBuilder, type InitializerData, type Value } from './graph-builder.js';
import { cast } from './ops.js';
import { activationType } from './target.js';

export interface IgnoredWeight {
  readonly pattern: RegExp;
  readonly reason: string;
}

interface WeightEntry {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: InitializerData;
}

const FLOAT_TYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

export class WeightSet {
  private readonly used = new Set<string>();

  private constructor(
    /** How errors name the weights, e.g. `unet/diffusion_pytorch_model.safetensors`. */
    readonly description: string,
    private readonly entries: ReadonlyMap<string, () => WeightEntry>,
  ) {}

  /** Weights read lazily from a safetensors file or sharded checkpoint: initializers point into the files. */
  static fromSource(source: TensorSource, description = source.description): WeightSet {
    const entries = new Map<string, () => WeightEntry>();
    for (const name of source.names()) {
      entries.set(name, () => {
        const info = source.info(name);
        return { dtype: info.dtype, dims: info.dims, data: { kind: 'file', file: info.file, offset: info.byteOffset, length: info.byteLength } };
      });
    }
    return new WeightSet(description, entries);
  }

  /** In-memory weights (tests, generated models): embedded in the graph. */
  static fromTensors(tensors: Readonly<Record<string, Tensor>>, description: string): WeightSet {
    const entries = new Map<string, () => WeightEntry>();
    for (const [name, t] of Object.entries(tensors)) {
      entries.set(name, () => ({ dtype: t.dtype, dims: t.dims, data: { kind: 'embedded', bytes: tensorBytes(t) } }));
    }
    return new WeightSet(description, entries);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Look up a weight, check its shape, record its use. */
  take(name: string, expectedDims: readonly number[]): WeightEntry {
    const make = this.entries.get(name);
    if (make === undefined) {
      throw new WeightMissingError(`${this.description}: missing weight ${name}: expected ${formatDims(expectedDims)}`, {
        hint: 'the weights do not fit the config: check that config.json belongs to these weights',
      });
    }
    const entry = make();
    if (!sameDims(entry.dims, expectedDims)) {
      throw new WeightShapeError(`${this.description}: ${name}: expected ${formatDims(expectedDims)}, got ${formatDims(entry.dims)}`);
    }
    if (!FLOAT_TYPES.includes(entry.dtype)) {
      throw new WeightShapeError(`${this.description}: ${name}: expected a float tensor, got ${entry.dtype}`);
    }
    this.used.add(name);
    return entry;
  }

  /** Names neither used nor ignored. */
  unused(ignored: readonly IgnoredWeight[] = []): string[] {
    return this.names().filter((n) => !this.used.has(n) && !ignored.some((i) => i.pattern.test(n)));
  }

  /** Both directions: every file tensor used or deliberately ignored. */
  assertAllUsed(ignored: readonly IgnoredWeight[] = []): void {
    const unused = this.unused(ignored);
    if (unused.length > 0) {
      const shown = unused.slice(0, 10).join(', ') + (unused.length > 10 ? `, ... (${unused.length} in all)` : '');
      throw new WeightUnusedError(`${this.description}: ${unused.length} weight(s) not used by the model built from the config: ${shown}`, {
        hint: 'the weights do not fit the config (another architecture or a config from another model?)',
      });
    }
  }
}

/** A naming scope that also descends the weight tree: `child('up_blocks', 1)` -> path `/up_blocks.1`, prefix `up_blocks.1.`. */
export class WeightScope extends Scope {
  constructor(
    g: GraphBuilder,
    path: string,
    readonly weights: WeightSet,
    readonly prefix: string,
  ) {
    super(g, path);
  }

  override child(...parts: readonly (string | number)[]): WeightScope {
    const part = parts.join('.');
    return new WeightScope(this.g, `${this.path}/${part}`, this.weights, `${this.prefix}${part}.`);
  }

  /** Descend the node path only (a sub-step of a block that has no weights of its own). */
  sub(name: string): WeightScope {
    return new WeightScope(this.g, `${this.path}/${name}`, this.weights, this.prefix);
  }

  hasWeight(name: string): boolean {
    return this.weights.has(this.prefix + name);
  }

  /**
   * Weight `prefix + name` of the given shape as a value of `as` (default: the target's activation type, float16
   * under fp16, else float32). A stored type that differs gets a Cast node on the verbatim initializer, which
   * onnxruntime folds once, at session creation.
   */
  weight(name: string, dims: readonly number[], as: 'float32' | 'float16' = activationType(this.g.target)): Value {
    const full = this.prefix + name;
    const entry = this.weights.take(full, dims);
    const dtype = entry.dtype;
    if (dtype === 'float32' && entry.data.kind === 'embedded' && entry.data.bytes.byteOffset % 4 !== 0) {
      throw new ModelBuildError(`${this.weights.description}: ${full}: float32 data not 4-byte aligned`);
    }
    const value = this.g.initializer({ name: full, dtype, dims: [...dims], data: entry.data });
    if (dtype === as) return value;
    return cast(new Scope(this.g, `/weights/${full}${as === 'float32' ? '' : `/${as}`}`), value, as);
  }
}
