/**
 * TransferOptions: the single source of the transfer's user-facing options (docs/architecture.md, "House rules"). The
 * type, the defaults and the validator live here; the CLI table (src/cli/options-table.ts) and later the web page
 * derive from it.
 *
 * Defaults are the authors' example run (docs/method.md §3): 100 steps, skip 32, guidance 2.5, inversion guidance 3.5,
 * feature range [10, 70) and AdaIN range [50, 100). The ranges are in units of the reference's `model.step`, an
 * index into the TRUNCATED schedule (docs/method.md, quirk 5). With another step count the defaults follow: skip is
 * round(0.32 numSteps) and the ranges cover the same fractions of the transfer's iterations (scaledDefaultRanges).
 * Given ranges are kept as given, but one that can never fire in the schedule is an error naming the steps that exist.
 */
import { InvalidParameterError, invalidParameterError } from '../errors.js';
import type { ImageSource } from '../io/image.js';
import type { SamBox, SamPoint } from '../models/sam/transforms.js';
import { DEFAULT_FIT, FITS, type Fit } from '../io/fit.js';
import { INJECTIONS, type Injection } from '../methods/eye-for-an-eye/controls.js';
import { METHOD_NAMES, type MethodName } from '../methods/index.js';
import { adainIterations, featureIterations, lastStepSeenByUnet, scaledDefaultSkip, scaleReferenceRange } from '../methods/eye-for-an-eye/schedule.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../runtime/session.js';
import { PRECISIONS, type Precision } from '../onnx/target.js';

export type Device = ExecutionProvider;
export const DEVICES: readonly Device[] = EXECUTION_PROVIDERS;
export { PRECISIONS, type Precision };
export { INJECTIONS, METHOD_NAMES };
export type { ImageSource, Injection, MethodName };

export interface TransferOptions {
  /** The method (src/methods/): 'eye-for-an-eye' or 'cia' (Cross-Image Attention). */
  method: MethodName;
  /** The object class, e.g. "bird": the prompt is built from it. */
  domain: string;
  /** Text prompt of the inversion and the transfer; default `A photo of a ${domain}`. */
  prompt: string;
  /** Number of DDIM timesteps of the inversion and the transfer (reference: 100). */
  numSteps: number;
  /** Timesteps skipped at the start of the transfer (reference: 32 of 100; default round(0.32 numSteps)). */
  skip: number;
  /** Classifier-free guidance of the transfer (reference example: 2.5); 1 = no guidance. */
  guidanceScale: number;
  /** Classifier-free guidance of the inversion (reference: 3.5, hard-coded; docs/method.md quirk 13). */
  inversionGuidance: number;
  /** Feature-injection steps [start, end) in truncated-schedule steps (default: [10, 70) scaled to the iterations). */
  featRange: readonly [number, number];
  /**
   * AdaIN steps [start, end) in truncated-schedule steps (applied from start - 1 to end; docs/method.md quirk 7;
   * default: [50, 100) scaled to the iterations).
   */
  adainRange: readonly [number, number];
  /** Seed of the inversion noise: TorchCpuRng(seed), drawn for the appearance image first, then the structure. */
  seed: number;
  /** Working size: the short side in pixels (multiple of 64); the long side follows the structure image's aspect (fit 'stretch': size x size). */
  size: number;
  /**
   * How the images are brought to the working size (src/io/image.ts): 'stretch' = the official loading, pixel for
   * pixel (Pillow decode, BICUBIC stretch to size x size); 'cover' (default) / 'contain' keep the aspect.
   */
  fit: Fit;
  /** Object masks (any image; gray > 127 = object) for the masked matching and masked AdaIN. */
  structureMask?: ImageSource;
  appearanceMask?: ImageSource;
  /**
   * Where object masks come from: 'given' (the mask files above, or none) or 'self-segmentation' (k-means of the
   * UNet's own attention maps, src/methods/shared/self-segmentation/; for Eye-for-an-eye an extension: masked AdaIN
   * with masks computed at the first AdaIN iteration, docs/method.md §7a). Absent: 'given'.
   */
  masks?: MaskSource;
  /**
   * SAM-HQ prompts, in the image file's pixels (after EXIF orientation): a box [x0, y0, x1, y1] and/or points
   * (label 1 on the object, 0 on the background). An image with a prompt gets its mask from SAM-HQ
   * (src/pipeline/sam-masks.ts); with `masks: 'sam'` every image without a mask file or prompt gets the whole-image
   * box, as the official run does.
   */
  structureBox?: SamBox;
  appearanceBox?: SamBox;
  structurePoints?: readonly SamPoint[];
  appearancePoints?: readonly SamPoint[];
  /** 'match' = the method; 'vInjection' = the ablation that rearranges only the values. */
  injection: Injection;
  /** Execution provider used when the pipeline is loaded from these options. */
  device: Device;
  /** Precision of the UNet when the pipeline is loaded from these options: fp32, or fp16 (float32 islands). */
  precision: Precision;
  /** Cache folder for built graphs and inversions (default: defaultCacheDir(), or E4E_CACHE_DIR). */
  cacheDir?: string;
  /**
   * The attn1 modules where the method acts, by diffusers module path (default: every attn1 of the two
   * highest-resolution up blocks with attention; SD: up_blocks.2 and up_blocks.3).
   */
  hookSites?: readonly string[];
  /** Cross-Image Attention: steps [start, end) of the K/V swap in the SD 32x32 (level 1) up-block self-attention. */
  crossAttn32Range: readonly [number, number];
  /** Cross-Image Attention: steps [start, end) of the K/V swap in the SD 64x64 (level 0) up-block self-attention. */
  crossAttn64Range: readonly [number, number];
  /** Cross-Image Attention: swap guidance, from this scale down to max(scale / 2, 1) over the iterations; 1 = off. */
  swapGuidanceScale: number;
  /** Cross-Image Attention: contrast of the out row's attention map in the swapped layers (1 = none). */
  contrastStrength: number;
  /**
   * Cross-Image Attention: masked AdaIN (masks from the given mask images, else self-segmentation); false = AdaIN
   * over all pixels.
   */
  maskedAdain: boolean;
}

/**
 * Every option that has a default (domain has none; masks and cacheDir are absent by default). skip and the ranges
 * are the values at 100 steps: validateTransferOptions scales them to the step count (and skip) of the run.
 */
export const DEFAULT_TRANSFER_OPTIONS = Object.freeze({
  method: 'eye-for-an-eye',
  numSteps: 100,
  skip: 32,
  guidanceScale: 2.5,
  inversionGuidance: 3.5,
  featRange: Object.freeze([10, 70] as const),
  adainRange: Object.freeze([50, 100] as const),
  seed: 0,
  size: 512,
  fit: DEFAULT_FIT,
  injection: 'match',
  device: 'cpu',
  precision: 'fp32',
  crossAttn32Range: Object.freeze([10, 70] as const),
  crossAttn64Range: Object.freeze([10, 90] as const),
  swapGuidanceScale: 3.5,
  contrastStrength: 1.67,
  maskedAdain: true,
});

/**
 * Defaults that differ by method (the rest of DEFAULT_TRANSFER_OPTIONS applies to every method): Cross-Image
 * Attention's official RunConfig has AdaIN over [20, 100) and runs without classifier-free guidance.
 */
export type MethodDefaults = Partial<Pick<TransferOptions, 'adainRange' | 'guidanceScale'>>;

export const METHOD_DEFAULTS: Readonly<Record<MethodName, Readonly<MethodDefaults>>> = Object.freeze({
  'eye-for-an-eye': Object.freeze({}),
  cia: Object.freeze({ adainRange: Object.freeze([20, 100] as const), guidanceScale: 1 }),
});

export const MAX_CONTRAST = 10;

/**
 * Options only one method reads: given with another value than their default with the other method they are an
 * error (never silently ignored). The
 * guidance of the transfer is Eye-for-an-eye's too (Cross-Image Attention runs without classifier-free guidance;
 * it accepts only its value 1).
 */
export const METHOD_ONLY_OPTIONS: Readonly<Record<MethodName, readonly (keyof TransferOptions)[]>> = Object.freeze({
  'eye-for-an-eye': Object.freeze(['featRange', 'injection', 'hookSites'] as const),
  cia: Object.freeze(['crossAttn32Range', 'crossAttn64Range', 'swapGuidanceScale', 'contrastStrength', 'maskedAdain'] as const),
});

/** The options of `input` that `method` reads (the other methods' own options removed), for runs of several methods. */
export function optionsForMethod(input: Readonly<Record<string, unknown>>, method: MethodName): Record<string, unknown> {
  const foreign = new Set<string>(
    Object.entries(METHOD_ONLY_OPTIONS)
      .filter(([m]) => m !== method)
      .flatMap(([, keys]) => keys),
  );
  if (method === 'cia') foreign.add('guidanceScale');
  return { ...Object.fromEntries(Object.entries(input).filter(([k]) => !foreign.has(k))), method };
}

/** Sources of the object masks (TransferOptions.masks). */
export const MASK_SOURCES = ['given', 'sam', 'self-segmentation'] as const;
export type MaskSource = (typeof MASK_SOURCES)[number];

export const SIZE_MULTIPLE = 64;
export const MIN_SIZE = 64;
export const MAX_SIZE = 2048;
export const MAX_STEPS = 1000;
export const MAX_GUIDANCE = 50;

/** Every key of TransferOptions, in display order (the validator rejects any other key by name). */
export const TRANSFER_OPTION_KEYS = [
  'method',
  'domain',
  'prompt',
  'numSteps',
  'skip',
  'guidanceScale',
  'inversionGuidance',
  'featRange',
  'adainRange',
  'seed',
  'size',
  'fit',
  'structureMask',
  'appearanceMask',
  'masks',
  'structureBox',
  'appearanceBox',
  'structurePoints',
  'appearancePoints',
  'injection',
  'device',
  'precision',
  'cacheDir',
  'hookSites',
  'crossAttn32Range',
  'crossAttn64Range',
  'swapGuidanceScale',
  'contrastStrength',
  'maskedAdain',
] as const satisfies readonly (keyof TransferOptions)[];

type Missing = Exclude<keyof TransferOptions, (typeof TRANSFER_OPTION_KEYS)[number]>;
// Compile-time check that the key list is complete: `Missing` must be `never`.
const KEYS_COMPLETE: [Missing] extends [never] ? true : never = true;
void KEYS_COMPLETE;

export type TransferOptionsInput = Partial<TransferOptions> & { domain: string };

function integerBetween(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidParameterError(name, `integer between ${min} and ${max}`, value);
  }
  return value;
}

function numberBetween(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidParameterError(name, `number between ${min} and ${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidParameterError(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidParameterError(name, 'boolean', value);
  return value;
}

function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalidParameterError(name, 'non-empty string', value);
  return value;
}

function stepRange(name: string, value: unknown): readonly [number, number] {
  const ok =
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((v) => Number.isInteger(v)) &&
    (value[0] as number) >= 0 &&
    (value[0] as number) < (value[1] as number) &&
    (value[1] as number) <= MAX_STEPS;
  if (!ok) throw invalidParameterError(name, `[start, end] of integers with 0 <= start < end <= ${MAX_STEPS}`, value);
  return Object.freeze([value[0] as number, value[1] as number] as const);
}

/** attn1 module paths such as `up_blocks.2.attentions.0.transformer_blocks.0.attn1` (checked against the model when built). */
function hookSites(value: unknown): readonly string[] {
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'string' && /^[a-z_]+(\.\w+)*\.attn1$/.test(v)) &&
    new Set(value).size === value.length;
  if (!ok)
    throw invalidParameterError('hookSites', 'non-empty list of distinct attn1 module paths (e.g. up_blocks.2.attentions.0.transformer_blocks.0.attn1)', value);
  return Object.freeze([...(value as string[])]);
}

function imageSource(name: string, value: unknown): ImageSource | undefined {
  if (value === undefined) return undefined;
  if (Buffer.isBuffer(value)) return value;
  return nonEmptyString(name, value);
}

/**
 * A range that no iteration of the schedule reaches would silently do nothing: an error naming the steps that exist.
 * Feature injection reads the lagged step (0, 0, 1, ..., iterations - 2); AdaIN runs after iterations start - 1 .. end.
 */
function checkRangesFire(o: TransferOptions): void {
  const iterations = o.numSteps - o.skip;
  const schedule = `numSteps ${o.numSteps} and skip ${o.skip} give ${iterations} transfer iteration${iterations === 1 ? '' : 's'}`;
  const [fs, fe] = o.featRange;
  if (featureIterations(iterations, { start: fs, end: fe }) === undefined) {
    throw new InvalidParameterError(
      `featRange [${fs}, ${fe}) never fires: ${schedule}, whose UNet calls see steps 0..${lastStepSeenByUnet(iterations)}, so the start must be at most ${lastStepSeenByUnet(iterations)}`,
      {
        parameter: 'featRange',
        hint: 'ranges count steps from the first iteration that is not skipped; leave the range out to get the default scaled to this schedule',
      },
    );
  }
  const [as, ae] = o.adainRange;
  if (adainIterations(iterations, { start: as, end: ae }) === undefined) {
    throw new InvalidParameterError(
      `adainRange [${as}, ${ae}) never fires: ${schedule} (steps 0..${iterations - 1}) and AdaIN runs after steps start - 1 .. end, so the start must be at most ${iterations}`,
      {
        parameter: 'adainRange',
        hint: 'ranges count steps from the first iteration that is not skipped; leave the range out to get the default scaled to this schedule',
      },
    );
  }
}

/**
 * Validate user options and fill the defaults. Unknown keys are rejected by name; every other problem is reported
 * as `Expected <what> for <option> but received <value> of type <type>`.
 */
export function validateTransferOptions(input: unknown): TransferOptions {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalidParameterError('options', 'object', input);
  const given = input as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => !(TRANSFER_OPTION_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new InvalidParameterError(
      `Unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known options: ${TRANSFER_OPTION_KEYS.join(', ')})`,
    );
  }
  const method = oneOf('method', given['method'] ?? DEFAULT_TRANSFER_OPTIONS.method, METHOD_NAMES);
  const methodDefaults: Readonly<Record<string, unknown>> = METHOD_DEFAULTS[method];
  const pick = <K extends keyof typeof DEFAULT_TRANSFER_OPTIONS>(key: K): unknown => given[key] ?? methodDefaults[key] ?? DEFAULT_TRANSFER_OPTIONS[key];
  const domain = nonEmptyString('domain', given['domain']);
  const numSteps = integerBetween('numSteps', pick('numSteps'), 1, MAX_STEPS);
  const skip = integerBetween('skip', given['skip'] ?? scaledDefaultSkip(numSteps), 0, numSteps - 1);
  const isRangeKey = (key: string): key is 'featRange' | 'adainRange' | 'crossAttn32Range' | 'crossAttn64Range' =>
    key === 'featRange' || key === 'adainRange' || key === 'crossAttn32Range' || key === 'crossAttn64Range';
  // A range left out is its default in steps of the reference's 100 / 32 schedule (per method), scaled to this one.
  const range = (key: 'featRange' | 'adainRange' | 'crossAttn32Range' | 'crossAttn64Range'): readonly [number, number] =>
    given[key] === undefined ? scaleReferenceRange(stepRange(key, pick(key)), numSteps, skip) : stepRange(key, given[key]);
  const options: TransferOptions = {
    method,
    domain,
    prompt: given['prompt'] === undefined ? `A photo of a ${domain}` : nonEmptyString('prompt', given['prompt']),
    numSteps,
    skip,
    guidanceScale: numberBetween('guidanceScale', pick('guidanceScale'), 1, MAX_GUIDANCE),
    inversionGuidance: numberBetween('inversionGuidance', pick('inversionGuidance'), 1, MAX_GUIDANCE),
    featRange: range('featRange'),
    adainRange: range('adainRange'),
    seed: integerBetween('seed', pick('seed'), 0, Number.MAX_SAFE_INTEGER),
    size: pick('size') as number,
    fit: oneOf('fit', pick('fit'), FITS),
    injection: oneOf('injection', pick('injection'), INJECTIONS),
    device: oneOf('device', pick('device'), DEVICES),
    precision: oneOf('precision', pick('precision'), PRECISIONS),
    crossAttn32Range: range('crossAttn32Range'),
    crossAttn64Range: range('crossAttn64Range'),
    swapGuidanceScale: numberBetween('swapGuidanceScale', pick('swapGuidanceScale'), 1, MAX_GUIDANCE),
    contrastStrength: numberBetween('contrastStrength', pick('contrastStrength'), 0, MAX_CONTRAST),
    maskedAdain: boolean('maskedAdain', pick('maskedAdain')),
  };
  // Eye-for-an-eye's ranges against its schedule (Cross-Image Attention's act through its own schedule).
  if (method === 'eye-for-an-eye') checkRangesFire(options);
  for (const [owner, keys] of Object.entries(METHOD_ONLY_OPTIONS)) {
    if (owner === method) continue;
    for (const key of keys) {
      // its default is accepted, as given or scaled to this schedule (validated options are validated again on their
      // way through the pipeline)
      const fallback = (DEFAULT_TRANSFER_OPTIONS as Readonly<Record<string, unknown>>)[key];
      const defaults = [fallback, ...(isRangeKey(key) ? [scaleReferenceRange(fallback as readonly [number, number], numSteps, skip)] : [])];
      if (given[key] !== undefined && !defaults.some((d) => JSON.stringify(given[key]) === JSON.stringify(d))) {
        throw invalidParameterError(key, `no value with method '${method}' (an option of '${owner}' only)`, given[key]);
      }
    }
  }
  if (method === 'cia' && options.guidanceScale !== 1) {
    throw invalidParameterError(
      'guidanceScale',
      '1 for Cross-Image Attention (its transfer runs without classifier-free guidance; see swapGuidanceScale)',
      options.guidanceScale,
    );
  }
  const size = options.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE || size % SIZE_MULTIPLE !== 0) {
    throw invalidParameterError('size', `multiple of ${SIZE_MULTIPLE} between ${MIN_SIZE} and ${MAX_SIZE}`, size);
  }
  const structureMask = imageSource('structureMask', given['structureMask']);
  const appearanceMask = imageSource('appearanceMask', given['appearanceMask']);
  if (given['masks'] !== undefined) options.masks = oneOf('masks', given['masks'], MASK_SOURCES);
  if (options.masks === 'self-segmentation' && (structureMask !== undefined || appearanceMask !== undefined)) {
    throw invalidParameterError('masks', "'given' when mask files are given (self-segmentation computes its own masks)", options.masks);
  }
  if (structureMask !== undefined) options.structureMask = structureMask;
  if (appearanceMask !== undefined) options.appearanceMask = appearanceMask;
  for (const role of ['structure', 'appearance'] as const) {
    const boxKey = `${role}Box` as const;
    const pointsKey = `${role}Points` as const;
    const box = given[boxKey] === undefined ? undefined : samBox(boxKey, given[boxKey]);
    const points = given[pointsKey] === undefined ? undefined : samPoints(pointsKey, given[pointsKey]);
    if (box === undefined && points === undefined) continue;
    const file = role === 'structure' ? structureMask : appearanceMask;
    if (file !== undefined) throw invalidParameterError(box !== undefined ? boxKey : pointsKey, `no prompt when a ${role} mask file is given`, box ?? points);
    if (options.masks === 'self-segmentation')
      throw invalidParameterError('masks', `'given' or 'sam' when SAM-HQ prompts are given (self-segmentation computes its own masks)`, options.masks);
    if (box !== undefined) options[boxKey] = box;
    if (points !== undefined) options[pointsKey] = points;
  }
  if (given['cacheDir'] !== undefined) options.cacheDir = nonEmptyString('cacheDir', given['cacheDir']);
  if (given['hookSites'] !== undefined) options.hookSites = hookSites(given['hookSites']);
  return Object.freeze(options);
}

function samBox(key: string, value: unknown): SamBox {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw invalidParameterError(key, 'a box [x0, y0, x1, y1] of four finite numbers', value);
  const [x0, y0, x1, y1] = value as [number, number, number, number];
  if (x1 <= x0 || y1 <= y0) throw invalidParameterError(key, 'a box with x0 < x1 and y0 < y1', value);
  return Object.freeze([x0, y0, x1, y1] as const);
}

function samPoints(key: string, value: unknown): readonly SamPoint[] {
  const ok = (p: unknown): p is SamPoint =>
    typeof p === 'object' &&
    p !== null &&
    Number.isFinite((p as SamPoint).x) &&
    Number.isFinite((p as SamPoint).y) &&
    ((p as SamPoint).label === 0 || (p as SamPoint).label === 1);
  if (!Array.isArray(value) || value.length === 0 || !value.every(ok))
    throw invalidParameterError(key, 'a non-empty list of points {x, y, label: 1 (object) | 0 (background)}', value);
  return Object.freeze(value.map((p) => Object.freeze({ x: p.x, y: p.y, label: p.label })));
}

/**
 * Working size for a structure image of `width x height`: the short side is `size`, the long side keeps the aspect
 * ratio rounded to the nearest multiple of `multiple` (at least `size`).
 */
export function workingSize(size: number, width: number, height: number, multiple = SIZE_MULTIPLE): { width: number; height: number } {
  const long = (n: number): number => Math.max(size, Math.round(n / multiple) * multiple);
  if (width >= height) return { width: long((size * width) / height), height: size };
  return { width: size, height: long((size * height) / width) };
}
