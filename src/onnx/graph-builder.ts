/**
 * GraphBuilder: the small DSL over the ONNX protobuf. It knows nothing about Stable Diffusion.
 *
 * - Values are names of tensors in the graph; only the builder creates them.
 * - Nodes are named by path (`/unet/up_blocks.1/attentions.0/.../to_q/MatMul`), outputs `${node}/output_${i}`.
 * - Constants are deduplicated and named `/constants/FLOAT/1e-05`, `/constants/INT64/[0, 2, 1]`.
 * - Initializers either embed a tensor or point at bytes of a file (external data, e.g. straight into a
 *   .safetensors file); `saveModel` (save.ts) decides where embedded bytes go.
 * - The graph is sorted topologically when the model is produced; a use of an undefined value is an error.
 */
import { createHash } from 'node:crypto';
import { ModelBuildError } from '../errors.js';
import { formatDims, numel, type Tensor } from '../tensor/tensor.js';
import { IR_VERSION, OPSET_IMPORTS, PRODUCER_NAME, BUILDER_VERSION } from './format.js';
import { DEFAULT_TARGET, type BuildTarget } from './target.js';
import {
  AttributeType,
  OnnxDataType,
  type AttributeProtoJs,
  type GraphProtoJs,
  type ModelProtoJs,
  type NodeProtoJs,
  type OnnxElemType,
  type TensorProtoJs,
  type ValueInfoProtoJs,
} from './proto.js';

export type Dim = number | string;

/** A tensor in the graph under construction. */
export interface Value {
  readonly name: string;
}

/** Attribute values: integers and int arrays plain, floats wrapped with `float()`/`floats()`. */
export type AttrValue =
  | number
  | readonly number[]
  | string
  | { readonly float: number }
  | { readonly floats: readonly number[] }
  | { readonly tensor: Tensor }
  | { readonly graph: GraphBuilder };

export const float = (x: number): { float: number } => ({ float: x });
export const floats = (xs: readonly number[]): { floats: readonly number[] } => ({ floats: xs });

/** Where an initializer's bytes live. */
export type InitializerData =
  | { readonly kind: 'embedded'; readonly bytes: Uint8Array }
  | { readonly kind: 'file'; readonly file: string; readonly offset: number; readonly length: number };

export interface Initializer {
  readonly name: string;
  readonly dtype: OnnxElemType;
  readonly dims: readonly number[];
  readonly data: InitializerData;
}

interface NodeRecord {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: readonly AttributeProtoJs[];
  readonly subgraphs: readonly GraphBuilder[];
}

interface IoRecord {
  readonly name: string;
  readonly dtype: OnnxElemType;
  readonly dims: readonly Dim[];
}

export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The shortest decimal that reads back as the same float32 (so 1e-5 is named 0.00001, not 0.0000099999997). */
function shortFloat32(v: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(v.toPrecision(digits));
    if (Math.fround(candidate) === v) return String(candidate);
  }
  return String(v);
}

function constantKey(dtype: OnnxElemType, dims: readonly number[], values: readonly (number | bigint)[], bytes: Uint8Array): string {
  const label = dtype === 'float32' ? 'FLOAT' : dtype.toUpperCase();
  if (values.length <= 8) {
    const shown = values.map((v) => (dtype === 'float32' && typeof v === 'number' ? shortFloat32(v) : String(v))).join(', ');
    const shape = dims.length === 0 ? shown : `[${shown}]${dims.length > 1 ? formatDims(dims) : ''}`;
    return `/constants/${label}/${shape}`;
  }
  const digest = createHash('sha1').update(bytes).digest('hex').slice(0, 16);
  return `/constants/${label}/${formatDims(dims)}/${digest}`;
}

export class GraphBuilder {
  readonly name: string;
  private readonly parent: GraphBuilder | undefined;
  private readonly nodes: NodeRecord[] = [];
  private readonly nodeNames = new Map<string, number>();
  private readonly inputs: IoRecord[] = [];
  private readonly outputs: IoRecord[] = [];
  private readonly initializers = new Map<string, Initializer>();
  private readonly metadata = new Map<string, string>();
  private readonly cpuNodes = new Map<string, string>();

  /** What the graph is built for (the root's target; subgraphs inherit it). */
  readonly target: BuildTarget;

  constructor(name: string, parent?: GraphBuilder, target: BuildTarget = DEFAULT_TARGET) {
    this.name = name;
    this.parent = parent;
    this.target = parent?.target ?? target;
  }

  /** The root builder owns initializers and constants (visible in every subgraph). */
  private get root(): GraphBuilder {
    return this.parent === undefined ? this : this.parent.root;
  }

  /** A subgraph (If branches, ...): its nodes may use any value of the enclosing graphs. */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this);
  }

  input(name: string, dtype: OnnxElemType, dims: readonly Dim[]): Value {
    if (this.inputs.some((i) => i.name === name)) throw new ModelBuildError(`graph '${this.name}': duplicate input '${name}'`);
    this.inputs.push({ name, dtype, dims });
    return { name };
  }

  /** Declare a graph output. The value is renamed through an Identity node when its name differs. */
  output(value: Value, name: string, dtype: OnnxElemType, dims: readonly Dim[]): void {
    if (this.outputs.some((o) => o.name === name)) throw new ModelBuildError(`graph '${this.name}': duplicate output '${name}'`);
    if (value.name !== name) this.addNode('Identity', [value], {}, { name: `/outputs/${name}`, outputNames: [name] });
    this.outputs.push({ name, dtype, dims });
  }

  setMetadata(key: string, value: string): void {
    this.metadata.set(key, value);
  }

  /**
   * Add a node. `name` is its full path; a repeated path gets a `_1`, `_2`, ... suffix.
   * A `null` input is an omitted optional input.
   */
  addNode(
    opType: string,
    inputs: readonly (Value | null)[],
    attrs: Readonly<Record<string, AttrValue>>,
    options: { name: string; outputs?: number; domain?: string; outputNames?: readonly string[] },
  ): Value[] {
    const seen = this.nodeNames.get(options.name);
    const nodeName = seen === undefined ? options.name : `${options.name}_${seen}`;
    this.nodeNames.set(options.name, (seen ?? 0) + 1);
    const count = options.outputNames?.length ?? options.outputs ?? 1;
    const outputs = options.outputNames !== undefined ? [...options.outputNames] : Array.from({ length: count }, (_, i) => `${nodeName}/output_${i}`);
    const subgraphs: GraphBuilder[] = [];
    const attributes = Object.entries(attrs).map(([key, value]) => this.attribute(nodeName, key, value, subgraphs));
    this.nodes.push({
      name: nodeName,
      opType,
      domain: options.domain ?? '',
      inputs: inputs.map((v) => (v === null ? '' : v.name)),
      outputs,
      attributes,
      subgraphs,
    });
    return outputs.map((name) => ({ name }));
  }

  private attribute(nodeName: string, name: string, value: AttrValue, subgraphs: GraphBuilder[]): AttributeProtoJs {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) {
        throw new ModelBuildError(`${nodeName}: attribute '${name}' = ${value} is not an integer (wrap floats with float())`);
      }
      return { name, type: AttributeType.INT, i: value };
    }
    if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
    if (Array.isArray(value)) {
      const ints = value as readonly number[];
      if (!ints.every(Number.isInteger)) throw new ModelBuildError(`${nodeName}: attribute '${name}' has non-integers (use floats())`);
      return { name, type: AttributeType.INTS, ints: [...ints] };
    }
    if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
    if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: [...value.floats] };
    if ('tensor' in value) {
      return { name, type: AttributeType.TENSOR, t: this.tensorProto(name, value.tensor.dtype, value.tensor.dims, tensorBytes(value.tensor)) };
    }
    if ('graph' in value) {
      subgraphs.push(value.graph);
      return { name, type: AttributeType.GRAPH };
    }
    throw new ModelBuildError(`${nodeName}: attribute '${name}' has an unsupported value`);
  }

  private tensorProto(name: string, dtype: OnnxElemType, dims: readonly number[], bytes: Uint8Array): TensorProtoJs {
    return { name, dims: [...dims], dataType: OnnxDataType[dtype], rawData: bytes };
  }

  /** A deduplicated constant initializer. */
  constant(t: Tensor): Value {
    const dtype = t.dtype;
    if (!(dtype in OnnxDataType)) throw new ModelBuildError(`constant of unsupported dtype ${t.dtype}`);
    const bytes = tensorBytes(t);
    const key = constantKey(dtype, t.dims, Array.from(t.data as ArrayLike<number | bigint>), bytes);
    const root = this.root;
    if (!root.initializers.has(key)) {
      root.initializers.set(key, { name: key, dtype, dims: [...t.dims], data: { kind: 'embedded', bytes: Uint8Array.from(bytes) } });
    }
    return { name: key };
  }

  /** A named initializer (a weight). Adding the same name twice returns the first one if it is identical. */
  initializer(init: Initializer): Value {
    const root = this.root;
    const existing = root.initializers.get(init.name);
    if (existing !== undefined) {
      if (existing.dtype !== init.dtype || formatDims(existing.dims) !== formatDims(init.dims)) {
        throw new ModelBuildError(`initializer '${init.name}' added twice with different type or shape`);
      }
      return { name: init.name };
    }
    const expected = numel(init.dims) * bytesPer(init.dtype);
    const actual = init.data.kind === 'embedded' ? init.data.bytes.byteLength : init.data.length;
    if (expected !== actual) {
      throw new ModelBuildError(`initializer '${init.name}' ${init.dtype}${formatDims(init.dims)} needs ${expected} bytes, got ${actual}`);
    }
    root.initializers.set(init.name, init);
    return { name: init.name };
  }

  listInitializers(): Initializer[] {
    return [...this.root.initializers.values()];
  }

  /**
   * Ask for the node producing `value` to run on the CPU whatever the execution provider (e.g. Sin / Cos, which
   * WebGPU computes with approximations 1e-4 off). Recorded on the root graph, with the reason, for the runtime.
   */
  keepOnCpu(value: Value, reason: string): void {
    const node = this.nodes.find((n) => n.outputs.includes(value.name));
    if (node === undefined) throw new ModelBuildError(`graph '${this.name}': keepOnCpu: no node of this graph produces '${value.name}'`);
    this.root.cpuNodes.set(node.name, reason);
  }

  /** Node names that must run on the CPU (keepOnCpu), in the order they were asked for. */
  get cpuNodeNames(): string[] {
    return [...this.root.cpuNodes.keys()];
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Op types in node order (for structural tests). */
  opTypes(): string[] {
    return this.nodes.map((n) => n.opType);
  }

  /** Names defined in this graph (inputs, node outputs) plus, for the root, initializers. */
  private definedHere(): Set<string> {
    const defined = new Set<string>(this.inputs.map((i) => i.name));
    for (const n of this.nodes) for (const o of n.outputs) defined.add(o);
    return defined;
  }

  /** Every name a node (and its subgraphs) reads from outside itself. */
  private static reads(node: NodeRecord): string[] {
    const names = node.inputs.filter((i) => i !== '');
    for (const sub of node.subgraphs) names.push(...sub.outerReads());
    return names;
  }

  /** Names this (sub)graph reads that it does not define itself. */
  private outerReads(): string[] {
    const defined = this.definedHere();
    const out: string[] = [];
    for (const n of this.nodes) for (const r of GraphBuilder.reads(n)) if (!defined.has(r)) out.push(r);
    for (const o of this.outputs) if (!defined.has(o.name)) out.push(o.name);
    return out;
  }

  /** Kahn's algorithm, stable with respect to insertion order. */
  private sortedNodes(available: ReadonlySet<string>): NodeRecord[] {
    const producer = new Map<string, number>();
    this.nodes.forEach((n, i) =>
      n.outputs.forEach((o) => {
        if (producer.has(o) || available.has(o)) throw new ModelBuildError(`graph '${this.name}': value '${o}' is defined twice`);
        producer.set(o, i);
      }),
    );
    const indegree = this.nodes.map(() => 0);
    const users = this.nodes.map((): number[] => []);
    this.nodes.forEach((n, i) => {
      for (const r of new Set(GraphBuilder.reads(n))) {
        const p = producer.get(r);
        if (p !== undefined) {
          indegree[i]! += 1;
          users[p]!.push(i);
        } else if (!available.has(r)) {
          throw new ModelBuildError(`graph '${this.name}': node '${n.name}' (${n.opType}) uses undefined value '${r}'`);
        }
      }
    });
    const ready = indegree.flatMap((d, i) => (d === 0 ? [i] : []));
    const order: NodeRecord[] = [];
    for (let k = 0; k < ready.length; k++) {
      const i = ready[k]!;
      order.push(this.nodes[i]!);
      for (const u of users[i]!) if (--indegree[u]! === 0) ready.push(u);
    }
    if (order.length !== this.nodes.length) throw new ModelBuildError(`graph '${this.name}' has a cycle`);
    return order;
  }

  /** The GraphProto; `locate` maps initializers to their TensorProto (embedded or external). */
  toGraphProto(locate: (init: Initializer) => TensorProtoJs, outer: ReadonlySet<string> = new Set()): GraphProtoJs {
    const available = new Set<string>(outer);
    for (const i of this.inputs) available.add(i.name);
    if (this.parent === undefined) for (const name of this.initializers.keys()) available.add(name);
    const order = this.sortedNodes(available);
    const visible = new Set<string>(available);
    for (const n of this.nodes) for (const o of n.outputs) visible.add(o);
    for (const o of this.outputs) {
      if (!visible.has(o.name)) throw new ModelBuildError(`graph '${this.name}': output '${o.name}' is never produced`);
    }
    const node: NodeProtoJs[] = order.map((n) => {
      let sub = 0;
      const attribute = n.attributes.map((a) => (a.type === AttributeType.GRAPH ? { ...a, g: n.subgraphs[sub++]!.toGraphProto(locate, visible) } : a));
      return { name: n.name, opType: n.opType, domain: n.domain, input: [...n.inputs], output: [...n.outputs], attribute };
    });
    return {
      name: this.name,
      node,
      initializer: this.parent === undefined ? [...this.initializers.values()].map(locate) : [],
      input: this.inputs.map(valueInfo),
      output: this.outputs.map(valueInfo),
    };
  }

  toModelProto(locate: (init: Initializer) => TensorProtoJs): ModelProtoJs {
    if (this.parent !== undefined) throw new ModelBuildError(`graph '${this.name}' is a subgraph, not a model`);
    const metadataProps = [['builder_version', BUILDER_VERSION], ...this.metadata.entries()].map(([key, value]) => ({ key: key!, value: value! }));
    return {
      irVersion: IR_VERSION,
      producerName: PRODUCER_NAME,
      producerVersion: BUILDER_VERSION,
      graph: this.toGraphProto(locate),
      opsetImport: OPSET_IMPORTS.map((o) => ({ ...o })),
      metadataProps,
    };
  }
}

export function bytesPer(dtype: OnnxElemType): number {
  switch (dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'int64':
    case 'float64':
      return 8;
    case 'float16':
    case 'bfloat16':
    case 'int16':
    case 'uint16':
      return 2;
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
  }
}

function valueInfo(io: IoRecord): ValueInfoProtoJs {
  return {
    name: io.name,
    type: {
      tensorType: {
        elemType: OnnxDataType[io.dtype],
        shape: { dim: io.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** A naming scope: a builder plus a node path. Blocks descend with `child`. */
export class Scope {
  constructor(
    readonly g: GraphBuilder,
    readonly path: string,
  ) {}

  child(...parts: readonly (string | number)[]): Scope {
    return new Scope(this.g, `${this.path}/${parts.join('.')}`);
  }

  /** Add a node named `${path}/${name ?? opType}`; returns all outputs. */
  nodes(
    opType: string,
    inputs: readonly (Value | null)[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    options: { name?: string; outputs?: number; domain?: string } = {},
  ): Value[] {
    const nodeOptions: { name: string; outputs?: number; domain?: string } = { name: `${this.path}/${options.name ?? opType}` };
    if (options.outputs !== undefined) nodeOptions.outputs = options.outputs;
    if (options.domain !== undefined) nodeOptions.domain = options.domain;
    return this.g.addNode(opType, inputs, attrs, nodeOptions);
  }

  /** A single-output node. */
  op(
    opType: string,
    inputs: readonly (Value | null)[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    options: { name?: string; domain?: string } = {},
  ): Value {
    return this.nodes(opType, inputs, attrs, options)[0]!;
  }
}
