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
import { DEFAULT_FIT, FITS, type Fit } from '../io/fit.js';
import { INJECTIONS, type Injection } from '../methods/eye-for-an-eye/controls.js';
import { METHOD_NAMES, type MethodName } from '../methods/index.js';
import { adainIterations, featureIterations, lastStepSeenByUnet, scaledDefaultRanges, scaledDefaultSkip } from '../methods/eye-for-an-eye/schedule.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../runtime/session.js';
import { PRECISIONS, type Precision } from '../onnx/target.js';

export type Device = ExecutionProvider;
export const DEVICES: readonly Device[] = EXECUTION_PROVIDERS;
export { PRECISIONS, type Precision };
export { INJECTIONS, METHOD_NAMES };
export type { ImageSource, Injection, MethodName };

export interface TransferOptions {
  /** The method (src/methods/): 'eye-for-an-eye', the only one so far. */
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
});

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
  'injection',
  'device',
  'precision',
  'cacheDir',
  'hookSites',
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
  const pick = <K extends keyof typeof DEFAULT_TRANSFER_OPTIONS>(key: K): unknown => given[key] ?? DEFAULT_TRANSFER_OPTIONS[key];
  const domain = nonEmptyString('domain', given['domain']);
  const numSteps = integerBetween('numSteps', pick('numSteps'), 1, MAX_STEPS);
  const skip = integerBetween('skip', given['skip'] ?? scaledDefaultSkip(numSteps), 0, numSteps - 1);
  const scaled = scaledDefaultRanges(numSteps, skip);
  const options: TransferOptions = {
    method: oneOf('method', pick('method'), METHOD_NAMES),
    domain,
    prompt: given['prompt'] === undefined ? `A photo of a ${domain}` : nonEmptyString('prompt', given['prompt']),
    numSteps,
    skip,
    guidanceScale: numberBetween('guidanceScale', pick('guidanceScale'), 1, MAX_GUIDANCE),
    inversionGuidance: numberBetween('inversionGuidance', pick('inversionGuidance'), 1, MAX_GUIDANCE),
    featRange: given['featRange'] === undefined ? scaled.featRange : stepRange('featRange', given['featRange']),
    adainRange: given['adainRange'] === undefined ? scaled.adainRange : stepRange('adainRange', given['adainRange']),
    seed: integerBetween('seed', pick('seed'), 0, Number.MAX_SAFE_INTEGER),
    size: pick('size') as number,
    fit: oneOf('fit', pick('fit'), FITS),
    injection: oneOf('injection', pick('injection'), INJECTIONS),
    device: oneOf('device', pick('device'), DEVICES),
    precision: oneOf('precision', pick('precision'), PRECISIONS),
  };
  checkRangesFire(options);
  const size = options.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE || size % SIZE_MULTIPLE !== 0) {
    throw invalidParameterError('size', `multiple of ${SIZE_MULTIPLE} between ${MIN_SIZE} and ${MAX_SIZE}`, size);
  }
  const structureMask = imageSource('structureMask', given['structureMask']);
  const appearanceMask = imageSource('appearanceMask', given['appearanceMask']);
  if (structureMask !== undefined) options.structureMask = structureMask;
  if (appearanceMask !== undefined) options.appearanceMask = appearanceMask;
  if (given['cacheDir'] !== undefined) options.cacheDir = nonEmptyString('cacheDir', given['cacheDir']);
  if (given['hookSites'] !== undefined) options.hookSites = hookSites(given['hookSites']);
  return Object.freeze(options);
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
