/**
 * The one way group runners find the input tensors of a golden output: from what io.json documents, never from the
 * particular names of one case. For an output ("anchor") and an input role, the candidates are, in order:
 *
 *   1. a tensor (or literal value) bound by a parameter of the anchor (`params.timestep = "unet.timestep"`);
 *   2. input tensors named in the anchor's meaning / producer / params text;
 *   3. the group-namespaced analogue of the role's top-level tensor (`nonsquare.unet.sample` for `unet.sample`);
 *   4. input tensors named in the texts of the anchor group's input tensors (after 3: an input's meaning may name
 *      the tensor it was made from, e.g. "a crop of unet.sample");
 *   5. the role's top-level tensor itself (`unet.sample`);
 *   6. the only input tensor of the anchor's group that fits the role (or several equal once converted).
 *
 * Only tensors io.json marks as inputs are taken from texts: texts also name outputs for comparison ("as
 * nonsquare.unet_plain.out, with FreeU"), and an output has the shape of the UNet's sample.
 *
 * Every candidate is checked against the role (dtype, rank, channel counts, and the shape the anchor implies); the
 * first that fits wins (within 2 and 4, tensors of the anchor's own group and the role's usual names come first).
 * When none fits, the error names the anchor, the role, and every candidate with the reason it was rejected.
 */
import { GoldenError } from '../errors.js';
import { formatDims, numel, type Tensor } from '../tensor/tensor.js';
import { groupOf, type GoldenCase, type GoldenTensorMeta } from './golden-case.js';
import type { ModelFacts } from './engine.js';

export interface InputRole<T> {
  /** What the input is, for messages ("UNet sample"). */
  readonly label: string;
  /** What fits, for messages ("float [2, 4, 16, 24]"). */
  readonly wants: string;
  /** Parameter names of an output that can bind this input (to a tensor name or a literal value). */
  readonly paramKeys: readonly string[];
  /** The role's top-level tensor names in the case format, most usual first. */
  readonly defaults: readonly string[];
  /** Why a tensor does not fit the role; undefined when it fits. */
  reject(meta: GoldenTensorMeta): string | undefined;
  convert(tensor: Tensor): T;
  /** A literal parameter value as the input (e.g. a numeric timestep); undefined when it is not one. */
  literal?(value: unknown): T | undefined;
}

export interface ResolvedInput<T> {
  /** The tensor used (or `<anchor>:params.<key>` for a literal). */
  name: string;
  value: T;
  /** How it was found, for reports. */
  source: string;
}

export interface ResolveOptions {
  /** The output the input is for. */
  anchor: string;
  /** Namespace of a mirrored group (`nonsquare`): `<namespace>.<default>` is tried before each default. */
  namespace?: string | undefined;
}

const TOKEN = /[A-Za-z_][A-Za-z0-9_.]*/g;

/** Tensor names of the case written in a text (as whole tokens; `x.y[0]` and `x.y.` name `x.y`). */
export function mentionedTensors(golden: GoldenCase, text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(TOKEN)) {
    let token = match[0].replace(/\.+$/, '');
    // The longest dot-prefix that is a tensor name: `unet.sample.mean` names unet.sample, `pipe.unet.sample` nothing.
    while (token !== '' && !golden.has(token)) token = token.includes('.') ? token.slice(0, token.lastIndexOf('.')) : '';
    if (token !== '' && !found.includes(token)) found.push(token);
  }
  return found;
}

function texts(meta: GoldenTensorMeta | undefined): [what: string, text: string][] {
  if (meta === undefined) return [];
  const out: [string, string][] = [];
  if (meta.meaning !== undefined) out.push(['meaning', meta.meaning]);
  if (meta.producer !== undefined) out.push(['producer', meta.producer]);
  if (meta.params !== undefined) out.push(['params', JSON.stringify(meta.params)]);
  return out;
}

export function resolveInput<T>(golden: GoldenCase, role: InputRole<T>, options: ResolveOptions): ResolvedInput<T> {
  const { anchor } = options;
  const group = groupOf(anchor);
  const anchorMeta = golden.tensors[anchor];
  const usual = [...(options.namespace === undefined ? [] : role.defaults.map((d) => `${options.namespace}.${d}`)), ...role.defaults];
  const seen = new Set<string>([anchor]);
  const looked: string[] = [];
  const isInput = (name: string): boolean => golden.tensors[name]?.role === 'input';

  const consider = (name: string, source: string): ResolvedInput<T> | undefined => {
    if (seen.has(name)) return undefined;
    seen.add(name);
    const meta = golden.tensors[name];
    const reason = meta === undefined ? 'not in the case' : role.reject(meta);
    if (reason !== undefined) {
      looked.push(`${name} (${source}): ${reason}`);
      return undefined;
    }
    return { name, value: role.convert(golden.get(name)), source };
  };

  // 1. Parameters of the anchor.
  for (const key of role.paramKeys) {
    const value = anchorMeta?.params?.[key];
    if (value === undefined) continue;
    if (typeof value === 'string' && golden.has(value)) {
      const found = consider(value, `params.${key} of ${anchor}`);
      if (found !== undefined) return found;
      continue;
    }
    const literal = role.literal?.(value);
    if (literal !== undefined) return { name: `${anchor}:params.${key}`, value: literal, source: `params.${key} of ${anchor} = ${JSON.stringify(value)}` };
  }

  // 2, 3. Input tensors named in the anchor's texts, then in the texts of its group's inputs.
  const mentionTier = (sources: [owner: string, meta: GoldenTensorMeta | undefined][]): ResolvedInput<T> | undefined => {
    const named: { name: string; source: string }[] = [];
    for (const [owner, meta] of sources) {
      for (const [what, text] of texts(meta)) {
        for (const name of mentionedTensors(golden, text)) {
          if (isInput(name) && !named.some((n) => n.name === name)) named.push({ name, source: `named in the ${what} of ${owner}` });
        }
      }
    }
    const rank = (name: string): number => (name.startsWith(`${group}.`) ? 0 : 2) + (usual.includes(name) ? 0 : 1);
    named.sort((a, b) => rank(a.name) - rank(b.name)); // stable: text order within a rank
    for (const { name, source } of named) {
      const found = consider(name, source);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const groupInputs = Object.keys(golden.tensors).filter((n) => n !== anchor && groupOf(n) === group && isInput(n));
  const tiers: (() => ResolvedInput<T> | undefined)[] = [
    () => mentionTier([[anchor, anchorMeta]]),
    // 3. The group-namespaced analogues of the usual names (before 4: an input's text may name what it was made from).
    () => {
      if (options.namespace === undefined) return undefined;
      for (const d of role.defaults) {
        const found = consider(`${options.namespace}.${d}`, `group analogue of ${d}`);
        if (found !== undefined) return found;
      }
      return undefined;
    },
    () => mentionTier(groupInputs.map((n) => [n, golden.tensors[n]])),
    // 5. The top-level tensors.
    () => {
      for (const d of role.defaults) {
        const found = consider(d, 'top-level input');
        if (found !== undefined) return found;
      }
      return undefined;
    },
    // 6. The only remaining input of the group that fits (or several holding the same values once converted).
    () => {
      const fits = groupInputs.filter((n) => !seen.has(n) && role.reject(golden.tensors[n]!) === undefined);
      if (fits.length === 1) return consider(fits[0]!, `the only input of group ${group} that fits`);
      if (fits.length > 1) {
        const values = fits.map((n) => role.convert(golden.get(n)));
        if (values.every((v) => sameValue(v, values[0]))) {
          return { name: fits[0]!, value: values[0]!, source: `inputs of group ${group} that fit, all equal: ${fits.join(', ')}` };
        }
        looked.push(`${fits.join(', ')} (inputs of group ${group}): several fit with different values, none is named by io.json`);
      }
      return undefined;
    },
  ];
  for (const tier of tiers) {
    const found = tier();
    if (found !== undefined) return found;
  }
  throw new GoldenError(
    `${anchor}: cannot map its ${role.label} input (wants ${role.wants}); candidates looked at:\n  ` +
      (looked.length > 0 ? looked.join('\n  ') : 'none (io.json names no input for it)'),
  );
}

/** Deep equality of converted inputs (numbers, tensors, lists of rows). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<number>;
    const y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ta = a as Tensor;
    const tb = b as Tensor;
    return ta.dtype === tb.dtype && formatDims(ta.dims) === formatDims(tb.dims) && sameValue(ta.data, tb.data);
  }
  return Object.is(a, b);
}

// ----- Roles -------------------------------------------------------------------------------------------------------

const FLOATS = ['float32', 'float16', 'bfloat16', 'float64'];
const INTEGERS = ['int64', 'int32', 'int16', 'int8', 'uint8', 'uint16'];

function asFloat32(t: Tensor): Tensor<'float32'> {
  if (t.dtype === 'float32') return t as Tensor<'float32'>;
  return { dtype: 'float32', dims: t.dims, data: Float32Array.from(t.data as ArrayLike<number>) };
}

function rows(t: Tensor<'float32'>, n: number): Float32Array[] {
  const size = t.data.length / n;
  return Array.from({ length: n }, (_, i) => Float32Array.from(t.data.subarray(i * size, (i + 1) * size)));
}

const NCHW = ['B', 'C', 'h', 'w'];
const HWC = ['H', 'W', 'C'];

/** `dims` as a pattern with the free axes (undefined) shown by name ("[B, 4, h, w]"). */
function pattern(dims: readonly (number | undefined)[], names: readonly string[] = NCHW): string {
  return formatDims(dims.map((d, i) => d ?? names[i] ?? '?'));
}

/** Why a shape does not match a pattern (undefined entries are free), or undefined. */
function shapeReason(shape: readonly number[], want: readonly (number | undefined)[], what: string, names: readonly string[] = NCHW): string | undefined {
  if (shape.length !== want.length) return `shape ${formatDims(shape)} is not ${want.length}-D (${what} is ${pattern(want, names)})`;
  const bad = want.some((d, i) => d !== undefined && d !== shape[i]);
  return bad ? `shape ${formatDims(shape)}, ${what} is ${pattern(want, names)}` : undefined;
}

function floatReason(meta: GoldenTensorMeta): string | undefined {
  return FLOATS.includes(meta.dtype) ? undefined : `dtype ${meta.dtype}, not a float`;
}

/**
 * The UNet's latent input: float [B, in_channels, h, w]; `output` (the anchor's shape [B, C, h, w]) fixes B, h, w.
 */
export function unetSampleRole(facts: ModelFacts, output: readonly number[] | undefined, defaults: readonly string[]): InputRole<Tensor<'float32'>> {
  const want = [output?.[0], facts.unetInChannels, output?.[2], output?.[3]];
  const what = output === undefined ? 'a UNet sample' : 'the sample this output needs';
  return {
    label: 'UNet sample',
    wants: `float ${pattern(want)}`,
    paramKeys: ['sample', 'latents', 'x'],
    defaults,
    reject: (m) =>
      floatReason(m) ??
      (m.shape.length === 4 && m.shape[1] !== facts.unetInChannels
        ? `${m.shape[1]} channels, the UNet takes ${facts.unetInChannels}`
        : shapeReason(m.shape, want, what)),
    convert: asFloat32,
  };
}

/** The integer timestep: an integer tensor of one element, or an integer parameter value. */
export function timestepRole(defaults: readonly string[]): InputRole<number> {
  return {
    label: 'timestep',
    wants: 'an integer tensor [1]',
    paramKeys: ['timestep', 't'],
    defaults,
    reject: (m) =>
      !INTEGERS.includes(m.dtype) ? `dtype ${m.dtype}, not an integer` : numel(m.shape) !== 1 ? `shape ${formatDims(m.shape)}, not one element` : undefined,
    convert: (t) => Number(t.data[0]),
    literal: (v) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined),
  };
}

/** Text embeddings for the UNet: float [B, T, D], B = the sample's batch, D = the cross-attention width. */
export function encoderStatesRole(facts: ModelFacts, batch: number, defaults: readonly string[]): InputRole<Tensor<'float32'>> {
  const dims = facts.crossAttentionDims;
  return {
    label: 'encoder_hidden_states',
    wants: `float [${batch}, T, ${dims.join(' or ')}]`,
    paramKeys: ['encoder_hidden_states', 'context'],
    defaults,
    reject: (m) =>
      floatReason(m) ??
      (m.shape.length !== 3
        ? `shape ${formatDims(m.shape)} is not 3-D [B, T, D]`
        : m.shape[0] !== batch
          ? `batch ${m.shape[0]}, the sample's batch is ${batch}`
          : !dims.includes(m.shape[2]!)
            ? `width ${m.shape[2]}, the UNet's cross-attention takes ${dims.join(' or ')}`
            : undefined),
    convert: asFloat32,
  };
}

/**
 * An image for the VAE encoder: float [B, 3, H, W] in [-1, 1], or uint8 HWC [H, W, 3] (or [1, H, W, 3]) fed as
 * float32(x) / 127.5 - 1 in NCHW (the documented preprocessing of inputs.image_*). `latent` (the anchor's shape
 * [B, C, h, w]) fixes B and H, W = f*h, f*w.
 */
export function vaeImageRole(facts: ModelFacts, latent: readonly number[] | undefined, defaults: readonly string[]): InputRole<Tensor<'float32'>> {
  const f = facts.vaeDownscale;
  const c = facts.vaeInChannels;
  const h = latent?.[2] === undefined ? undefined : latent[2] * f;
  const w = latent?.[3] === undefined ? undefined : latent[3] * f;
  const nchw = [latent?.[0], c, h, w];
  const what = latent === undefined ? 'an image' : 'the image this latent needs';
  return {
    label: 'VAE image',
    wants: `float ${pattern(nchw, ['B', 'C', 'H', 'W'])} or uint8 HWC ${pattern([h, w, c], HWC)}`,
    paramKeys: ['image', 'x', 'sample'],
    defaults,
    reject: (m) => {
      if (m.dtype === 'uint8') {
        const hwc = m.shape.length === 4 && m.shape[0] === 1 ? m.shape.slice(1) : m.shape;
        if (latent !== undefined && latent[0] !== 1) return `uint8 HWC image holds one image, the latent has batch ${latent[0]}`;
        return shapeReason(hwc, [h, w, c], `${what} (uint8 HWC)`, HWC);
      }
      return floatReason(m) ?? shapeReason(m.shape, nchw, what, ['B', 'C', 'H', 'W']);
    },
    convert: (t) => {
      if (t.dtype !== 'uint8') return asFloat32(t);
      const [hh, ww, cc] = (t.dims.length === 4 ? t.dims.slice(1) : t.dims) as [number, number, number];
      const data = new Float32Array(hh * ww * cc);
      const src = t.data as Uint8Array;
      for (let y = 0; y < hh; y++)
        for (let x = 0; x < ww; x++)
          for (let k = 0; k < cc; k++) {
            data[(k * hh + y) * ww + x] = Math.fround(Math.fround(src[(y * ww + x) * cc + k]! / 127.5) - 1);
          }
      return { dtype: 'float32', dims: [1, cc, hh, ww], data };
    },
  };
}

/** A latent for the VAE decoder: float [B, latent_channels, h, w]; `image` (the anchor's [B, 3, H, W]) fixes B, h, w. */
export function vaeLatentRole(facts: ModelFacts, image: readonly number[] | undefined, defaults: readonly string[]): InputRole<Tensor<'float32'>> {
  const f = facts.vaeDownscale;
  const want = [image?.[0], facts.latentChannels, image?.[2] === undefined ? undefined : image[2] / f, image?.[3] === undefined ? undefined : image[3] / f];
  return {
    label: 'VAE latent',
    wants: `float ${pattern(want)}`,
    paramKeys: ['latent', 'latents', 'z'],
    defaults,
    reject: (m) => floatReason(m) ?? shapeReason(m.shape, want, image === undefined ? 'a latent' : 'the latent this image needs'),
    convert: asFloat32,
  };
}

/** An object mask [H, W] (uint8 / bool 0-1, or float), as float32 0/1. */
export function maskRole(label: string, defaults: readonly string[]): InputRole<Tensor<'float32'>> {
  return {
    label,
    wants: 'a mask [H, W] (uint8, bool or float)',
    paramKeys: [],
    defaults,
    reject: (m) =>
      ![...FLOATS, 'uint8', 'bool'].includes(m.dtype)
        ? `dtype ${m.dtype}, not a mask type`
        : m.shape.length !== 2
          ? `shape ${formatDims(m.shape)} is not 2-D [H, W]`
          : undefined,
    convert: (t) => ({ dtype: 'float32', dims: t.dims, data: Float32Array.from(t.data as ArrayLike<number>, (v) => (Number(v) !== 0 ? 1 : 0)) }),
  };
}

/**
 * `count` stacked latents [count, C, h, w] (or [count, 1, C, h, w]) with C = the VAE's latent channels; `latent`
 * ([C, h, w]) fixes the rest. Returned as one Float32Array per row.
 */
export function latentRowsRole(
  facts: ModelFacts,
  label: string,
  count: number,
  latent: readonly number[] | undefined,
  defaults: readonly string[],
): InputRole<Float32Array[]> {
  const want = [count, latent?.[0] ?? facts.latentChannels, latent?.[1], latent?.[2]];
  const names = ['N', 'C', 'h', 'w'];
  return {
    label,
    wants: `float ${pattern(want, names)}`,
    paramKeys: [],
    defaults,
    reject: (m) => floatReason(m) ?? shapeReason(m.shape.length === 5 && m.shape[1] === 1 ? [m.shape[0]!, ...m.shape.slice(2)] : m.shape, want, label, names),
    convert: (t) => rows(asFloat32(t), t.dims[0]!),
  };
}
