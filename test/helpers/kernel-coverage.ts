/**
 * Does an execution provider have a kernel for every node of a graph? Answered from onnxruntime's own kernel table
 * (docs/OperatorKernels.md, extracted into test/fixtures/ort-1.30/cuda-kernels.json) without a session:
 *
 * 1. dtypes: a small propagation over the graph (graph inputs and initializers carry dtypes; Shape/Size/ArgMax ->
 *    int64; Cast -> its `to`; comparisons and logic -> bool; ConstantOfShape -> its value's dtype; If -> the declared
 *    outputs of its branches, whose nodes are visited too; Where -> its second input; anything else -> its first
 *    non-empty input);
 * 2. kernels: onnxruntime's rule (KernelRegistry::VerifyKernelDef) for the node's schema version at the model's opset:
 *    a kernel registered from that version on, or a bounded range that contains it. An open-ended kernel "13+" does
 *    not serve an op whose schema changed again at 16;
 * 3. types: every input and output dtype must be allowed by the type constraint the kernel's documented signature
 *    gives that position.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GraphBuilder, Initializer } from '../../src/onnx/graph-builder.js';
import { OnnxDataType, type AttributeProtoJs, type GraphProtoJs, type ModelProtoJs, type NodeProtoJs, type TensorProtoJs } from '../../src/onnx/proto.js';
import { fixturesDir } from './paths.js';

// ---- the tables ---------------------------------------------------------------------------------------------------

interface Signature {
  readonly in: readonly string[];
  readonly out: readonly string[];
}

interface Kernel {
  readonly since: number;
  /** null: registered from `since` on, with no end (INT_MAX in onnxruntime). */
  readonly end: number | null;
  readonly types: Readonly<Record<string, readonly string[]>>;
}

interface OpKernels {
  readonly signatures: readonly Signature[];
  readonly kernels: readonly Kernel[];
}

interface Amendment extends Kernel {
  readonly domain: string;
  readonly op: string;
  readonly attributes?: Readonly<Record<string, number>>;
  readonly condition?: string;
  readonly source: string;
}

export interface KernelTable {
  readonly source: { readonly repository: string; readonly path: string; readonly commit: string };
  readonly domains: Readonly<Record<string, Readonly<Record<string, OpKernels>>>>;
  readonly amendments: readonly Amendment[];
}

export interface SchemaVersions {
  readonly source: { readonly repository: string; readonly path: string; readonly commit: string };
  /** The opsets the table covers, [first, last]. */
  readonly opsets: readonly [number, number];
  /** ai.onnx op -> the opsets in which it got a new schema. */
  readonly versions: Readonly<Record<string, readonly number[]>>;
}

const tableDir = join(fixturesDir, 'ort-1.30');

export function loadCudaKernelTable(): KernelTable {
  return JSON.parse(readFileSync(join(tableDir, 'cuda-kernels.json'), 'utf8')) as KernelTable;
}

export function loadOnnxSchemaVersions(): SchemaVersions {
  return JSON.parse(readFileSync(join(tableDir, 'onnx-op-versions.json'), 'utf8')) as SchemaVersions;
}

// ---- dtypes -------------------------------------------------------------------------------------------------------

/** TensorProto.DataType codes -> the names the kernel table uses. */
const DTYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'float',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'double',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

function dtypeName(code: number | undefined, what: string): string {
  const name = code === undefined ? undefined : DTYPE_NAMES[code];
  if (name === undefined) throw new Error(`${what}: unknown ONNX data type ${String(code)}`);
  return name;
}

/** Ops whose output dtype is fixed, whatever their inputs. */
const FIXED_OUTPUT: Readonly<Record<string, string>> = {
  Shape: 'int64',
  Size: 'int64',
  ArgMax: 'int64',
  ArgMin: 'int64',
  NonZero: 'int64',
  Equal: 'bool',
  Greater: 'bool',
  GreaterOrEqual: 'bool',
  Less: 'bool',
  LessOrEqual: 'bool',
  Not: 'bool',
  And: 'bool',
  Or: 'bool',
  Xor: 'bool',
  IsNaN: 'bool',
  IsInf: 'bool',
};

/** A node with the dtype of each of its inputs (null: omitted optional input) and outputs. */
export interface TypedNode {
  /** Which graph (model) it is in, as the caller names it. */
  readonly graph: string;
  /** The node's name, after the If nodes (and branch) that hold it. */
  readonly path: string;
  /** '' for ai.onnx. */
  readonly domain: string;
  readonly opType: string;
  readonly inputs: readonly (string | null)[];
  readonly outputs: readonly string[];
  readonly attributes: readonly AttributeProtoJs[];
}

function attribute(node: NodeProtoJs, name: string): AttributeProtoJs | undefined {
  return node.attribute.find((a) => a.name === name);
}

function outputDtypes(node: NodeProtoJs, inputs: readonly (string | null)[], where: string): string[] {
  const fixed = FIXED_OUTPUT[node.opType];
  let dtype: string | null | undefined;
  if (fixed !== undefined) dtype = fixed;
  else if (node.opType === 'Cast') dtype = dtypeName(attribute(node, 'to')?.i, `${where}: attribute 'to'`);
  else if (node.opType === 'ConstantOfShape') {
    const value = attribute(node, 'value')?.t;
    dtype = value === undefined ? 'float' : dtypeName(value.dataType, `${where}: attribute 'value'`);
  } else if (node.opType === 'Where') dtype = inputs[1];
  else dtype = inputs.find((d) => d !== null);
  if (dtype === undefined || dtype === null) throw new Error(`${where}: no input to take the output dtype from`);
  return node.output.map(() => dtype);
}

function declaredDtypes(graph: GraphProtoJs, where: string): string[] {
  return graph.output.map((o) => dtypeName(o.type.tensorType.elemType, `${where}: output '${o.name}'`));
}

function walk(graph: GraphProtoJs, outer: ReadonlyMap<string, string>, label: string, prefix: string, found: TypedNode[]): void {
  const dtypes = new Map(outer);
  for (const i of graph.input) dtypes.set(i.name, dtypeName(i.type.tensorType.elemType, `${label}: input '${i.name}'`));
  for (const t of graph.initializer) dtypes.set(t.name, dtypeName(t.dataType, `${label}: initializer '${t.name}'`));
  for (const node of graph.node) {
    const path = `${prefix}${node.name}`;
    const where = `${label}: ${path} (${node.opType})`;
    const inputs = node.input.map((name) => {
      if (name === '') return null;
      const d = dtypes.get(name);
      if (d === undefined) throw new Error(`${where}: input '${name}' has no known dtype`);
      return d;
    });
    let outputs: string[];
    if (node.opType === 'If') {
      const branches = ['then_branch', 'else_branch'].map((name) => {
        const g = attribute(node, name)?.g;
        if (g === undefined) throw new Error(`${where}: no ${name}`);
        walk(g, dtypes, label, `${path} [${name}] `, found);
        return declaredDtypes(g, `${where} ${name}`);
      });
      const [thenOut, elseOut] = branches.map((b) => b.join(', '));
      if (thenOut !== elseOut) throw new Error(`${where}: the branches declare different outputs (${thenOut ?? ''} vs ${elseOut ?? ''})`);
      outputs = branches[0]!;
    } else {
      outputs = outputDtypes(node, inputs, where);
    }
    node.output.forEach((name, k) => dtypes.set(name, outputs[k]!));
    found.push({ graph: label, path, domain: node.domain ?? '', opType: node.opType, inputs, outputs, attributes: node.attribute });
  }
  // A declared output whose propagated dtype differs would be a builder bug (or a gap in the rules above).
  const declared = declaredDtypes(graph, label);
  graph.output.forEach((o, k) => {
    const computed = dtypes.get(o.name);
    if (computed !== declared[k]) throw new Error(`${label}: ${prefix}output '${o.name}' is declared ${declared[k]}, computed ${computed ?? 'nothing'}`);
  });
}

/** Every node of the model, subgraphs included, with its dtypes. */
export function typedNodes(model: ModelProtoJs, label: string): TypedNode[] {
  const found: TypedNode[] = [];
  walk(model.graph, new Map(), label, '', found);
  return found;
}

/** The model proto of a builder, initializers without their bytes (nothing is read from weight files). */
export function shapeOnlyModel(builder: GraphBuilder): ModelProtoJs {
  return builder.toModelProto((init: Initializer): TensorProtoJs => ({ name: init.name, dims: [...init.dims], dataType: OnnxDataType[init.dtype] }));
}

// ---- kernels ------------------------------------------------------------------------------------------------------

export interface KernelQuery {
  /** '' or 'ai.onnx' for the default domain. */
  readonly domain: string;
  readonly opType: string;
  /** The model's opset of that domain. */
  readonly opset: number;
  readonly inputs: readonly (string | null)[];
  readonly outputs: readonly string[];
  readonly attributes?: readonly AttributeProtoJs[];
}

export type KernelVerdict =
  | { readonly ok: true; readonly schemaVersion: number; readonly kernel: string; readonly via: 'table' | 'amendment' }
  | { readonly ok: false; readonly reason: string };

const tableDomain = (domain: string): string => (domain === '' ? 'ai.onnx' : domain);

function rangeText(k: Kernel): string {
  if (k.end === null) return `${k.since}+`;
  return k.end === k.since ? `${k.since}` : `[${k.since}, ${k.end}]`;
}

/** The version of the op's schema that a model of this opset uses (contrib ops: their single version 1). */
function schemaVersion(schemas: SchemaVersions, domain: string, op: string, opset: number): number | string {
  if (domain !== 'ai.onnx') return 1;
  if (opset < schemas.opsets[0] || opset > schemas.opsets[1]) {
    throw new Error(`the ONNX schema table covers opsets ${schemas.opsets.join('-')}, not ${opset}: extend test/fixtures/ort-1.30/onnx-op-versions.json`);
  }
  const versions = schemas.versions[op];
  if (versions === undefined) return `ai.onnx ${op} is not in the ONNX schema table`;
  const usable = versions.filter((v) => v <= opset);
  if (usable.length === 0) return `ai.onnx ${op} has no schema at opset ${opset} (first: ${versions[0]})`;
  return Math.max(...usable);
}

/** onnxruntime's KernelRegistry::VerifyKernelDef: the exact start version, or a bounded range that holds it. */
function servesVersion(k: Kernel, version: number): boolean {
  return k.since === version || (k.since < version && k.end !== null && k.end >= version);
}

const shortType = (fixed: string): string => /^tensor\(([a-z0-9]+)\)$/.exec(fixed)?.[1] ?? fixed;

/** Why the dtypes of a node do not fit a kernel, or undefined when they do. */
function typeMismatch(signatures: readonly Signature[], k: Kernel, q: KernelQuery): string | undefined {
  const problems: string[] = [];
  const check = (side: 'in' | 'out', index: number, dtype: string): void => {
    // The constraint each documented signature gives this position; past the end of every signature, the last
    // parameter of each (a variadic one: Concat's inputs, Split's outputs).
    const lists = signatures.map((s) => s[side]);
    const longEnough = lists.filter((l) => l.length > index);
    const candidates = longEnough.length > 0 ? longEnough.map((l) => l[index]!) : lists.flatMap((l) => l.slice(-1));
    const applicable = candidates.filter((c) => c.includes('(') || k.types[c] !== undefined);
    if (applicable.length === 0) return; // the kernel does not constrain this position
    if (applicable.some((c) => (c.includes('(') ? shortType(c) === dtype : (k.types[c] ?? []).includes(dtype)))) return;
    const allowed = [...new Set(applicable.map((c) => (c.includes('(') ? `${c}` : `${c} = ${(k.types[c] ?? []).join(', ')}`)))].join(' or ');
    problems.push(`${side === 'in' ? 'input' : 'output'} ${index} is ${dtype}, the kernel allows ${allowed}`);
  };
  q.inputs.forEach((d, i) => d !== null && check('in', i, d));
  q.outputs.forEach((d, i) => check('out', i, d));
  return problems.length === 0 ? undefined : problems.join('; ');
}

function attributeMismatch(a: Amendment, q: KernelQuery): string | undefined {
  for (const [name, value] of Object.entries(a.attributes ?? {})) {
    const actual = q.attributes?.find((attr) => attr.name === name)?.i ?? 0;
    if (actual !== value) return `attribute ${name} = ${actual}; the kernel needs ${value} (${a.condition ?? ''})`;
  }
  return undefined;
}

/** A CUDA kernel for the node, as onnxruntime would pick one, or why there is none. */
export function findKernel(table: KernelTable, schemas: SchemaVersions, q: KernelQuery): KernelVerdict {
  const domain = tableDomain(q.domain);
  const entry = table.domains[domain]?.[q.opType];
  const amendments = table.amendments.filter((a) => a.domain === domain && a.op === q.opType);
  if (entry === undefined && amendments.length === 0) return { ok: false, reason: `no kernel for ${domain} ${q.opType} at all` };
  const version = schemaVersion(schemas, domain, q.opType, q.opset);
  if (typeof version === 'string') return { ok: false, reason: version };
  const signatures = entry?.signatures ?? [];
  const candidates = [
    ...(entry?.kernels ?? []).map((k) => ({ k, via: 'table' as const, extra: undefined })),
    ...amendments.map((a) => ({ k: a, via: 'amendment' as const, extra: attributeMismatch(a, q) })),
  ];
  const serving = candidates.filter((c) => servesVersion(c.k, version));
  if (serving.length === 0) {
    const ranges = candidates.map((c) => rangeText(c.k)).join(', ');
    return { ok: false, reason: `no kernel registered for its schema version ${version} (opset ${q.opset}); kernels: ${ranges}` };
  }
  const reasons: string[] = [];
  for (const c of serving) {
    const problem = c.extra ?? typeMismatch(signatures, c.k, q);
    if (problem === undefined) return { ok: true, schemaVersion: version, kernel: rangeText(c.k), via: c.via };
    reasons.push(`${rangeText(c.k)}${c.via === 'amendment' ? ' (amendment)' : ''}: ${problem}`);
  }
  return { ok: false, reason: reasons.join(' | ') };
}

// ---- coverage of whole graphs -------------------------------------------------------------------------------------

/** (domain, op, dtype): the dtype is that of the input that selects the kernel (Where: the second, else the first). */
export function tripleOf(node: Pick<TypedNode, 'domain' | 'opType' | 'inputs' | 'outputs'>): string {
  const primary = node.opType === 'Where' ? node.inputs[1] : node.inputs.find((d) => d !== null);
  return `${tableDomain(node.domain)} ${node.opType} ${primary ?? node.outputs[0] ?? '?'}`;
}

export interface TripleUse {
  readonly triple: string;
  /** Graphs that use it, in first-use order. */
  readonly graphs: string[];
  nodes: number;
  /** The first node that has no kernel (else the first node), and the verdict. */
  example: { graph: string; path: string };
  verdict: KernelVerdict;
}

/** Every triple of the models, with the verdict of its nodes (a triple fails if any of its nodes has no kernel). */
export function kernelCoverage(table: KernelTable, schemas: SchemaVersions, models: readonly { label: string; model: ModelProtoJs }[]): Map<string, TripleUse> {
  const uses = new Map<string, TripleUse>();
  for (const { label, model } of models) {
    const opsets = new Map(model.opsetImport.map((o) => [o.domain, o.version]));
    for (const node of typedNodes(model, label)) {
      const opset = opsets.get(node.domain);
      if (opset === undefined) throw new Error(`${label}: ${node.path}: domain '${node.domain}' is not imported`);
      const verdict = findKernel(table, schemas, { ...node, opset });
      const triple = tripleOf(node);
      let use = uses.get(triple);
      if (use === undefined) {
        use = { triple, graphs: [], nodes: 0, example: { graph: label, path: node.path }, verdict };
        uses.set(triple, use);
      }
      use.nodes += 1;
      if (!use.graphs.includes(label)) use.graphs.push(label);
      if (use.verdict.ok && !verdict.ok) {
        use.verdict = verdict;
        use.example = { graph: label, path: node.path };
      }
    }
  }
  return uses;
}
