/**
 * The `transfer` command's flags as a typed table derived from TransferOptions (docs/architecture.md, "House rules"): every option has
 * a flag or an explicit `null`, so an option cannot be added to the library without deciding its CLI form.
 * Parsers only turn text into values; the ranges and rules are checked once, by validateTransferOptions.
 */
import { FITS } from '../io/fit.js';
import { DEFAULT_TRANSFER_OPTIONS, DEVICES, MASK_SOURCES, METHOD_DEFAULTS, METHOD_NAMES, PRECISIONS, type TransferOptions } from '../pipeline/options.js';

/** A command-line mistake (unknown or missing option, malformed value): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CliFlag<V> {
  /** Long flag name without the dashes. */
  flag: string;
  type: 'string' | 'boolean';
  /** Placeholder in the help, e.g. `N`. */
  valueName?: string;
  description: string;
  /** The flag may be repeated (its values come as a list, in order). */
  multiple?: boolean;
  parse: (raw: string | boolean | string[]) => V;
}

export type CliOptions<T> = { readonly [K in keyof Required<T>]-?: CliFlag<Required<T>[K]> | null };

function text(raw: string | boolean | string[]): string {
  return String(raw);
}

function number(flag: string): (raw: string | boolean | string[]) => number {
  return (raw) => {
    const s = String(raw).trim();
    const v = Number(s);
    if (s === '' || !Number.isFinite(v)) throw new UsageError(`--${flag}: expected a number but received '${String(raw)}'`);
    return v;
  };
}

function range(flag: string): (raw: string | boolean | string[]) => readonly [number, number] {
  return (raw) => {
    const parts = String(raw)
      .split(',')
      .map((p) => p.trim());
    const values = parts.map(Number);
    if (parts.length !== 2 || parts.some((p) => p === '') || values.some((v) => !Number.isFinite(v))) {
      throw new UsageError(`--${flag}: expected START,END (two numbers) but received '${String(raw)}'`);
    }
    return [values[0]!, values[1]!] as const;
  };
}

function numbers(flag: string, raw: string, count: number, what: string): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  const values = parts.map(Number);
  if (parts.length !== count || parts.some((p) => p === '') || values.some((v) => !Number.isFinite(v))) {
    throw new UsageError(`--${flag}: expected ${what} but received '${raw}'`);
  }
  return values;
}

function box(flag: string): (raw: string | boolean | string[]) => readonly [number, number, number, number] {
  return (raw) => {
    const [x0, y0, x1, y1] = numbers(flag, String(raw), 4, 'x0,y0,x1,y1 (four numbers)');
    return [x0!, y0!, x1!, y1!] as const;
  };
}

/** `x,y,L` -> a SAM-HQ point (L = 1 object, 0 background); shared with `eye4eye mask --point`. */
export function parsePoint(flag: string, raw: string): { x: number; y: number; label: 0 | 1 } {
  const [x, y, label] = numbers(flag, raw, 3, 'x,y,L (L = 1 on the object, 0 on the background)');
  if (label !== 0 && label !== 1) throw new UsageError(`--${flag}: the label of '${raw}' must be 1 (object) or 0 (background)`);
  return { x: x!, y: y!, label };
}

/** `x0,y0,x1,y1` -> a box; shared with `eye4eye mask --box`. */
export function parseBox(flag: string, raw: string): readonly [number, number, number, number] {
  return box(flag)(raw);
}

function points(flag: string): (raw: string | boolean | string[]) => readonly { x: number; y: number; label: 0 | 1 }[] {
  return (raw) => (Array.isArray(raw) ? raw : [String(raw)]).map((r) => parsePoint(flag, r));
}

const d = DEFAULT_TRANSFER_OPTIONS;

export const TRANSFER_CLI_OPTIONS: CliOptions<TransferOptions> = {
  method: {
    flag: 'method',
    type: 'string',
    valueName: METHOD_NAMES.join('|'),
    description: `appearance-transfer method (default ${d.method})`,
    parse: (raw) => String(raw) as TransferOptions['method'],
  },
  domain: { flag: 'domain', type: 'string', valueName: 'NAME', description: 'object class, e.g. bird (required)', parse: text },
  prompt: { flag: 'prompt', type: 'string', valueName: 'TEXT', description: "prompt (default: 'A photo of a <domain>')", parse: text },
  numSteps: {
    flag: 'steps',
    type: 'string',
    valueName: 'N',
    description: `DDIM steps of inversion and transfer (default ${d.numSteps})`,
    parse: number('steps'),
  },
  skip: { flag: 'skip', type: 'string', valueName: 'N', description: `steps skipped at the start of the transfer (default ${d.skip})`, parse: number('skip') },
  guidanceScale: {
    flag: 'guidance',
    type: 'string',
    valueName: 'G',
    description: `classifier-free guidance of the transfer (default ${d.guidanceScale}; cia: ${METHOD_DEFAULTS.cia.guidanceScale}, the only value it takes)`,
    parse: number('guidance'),
  },
  inversionGuidance: {
    flag: 'inversion-guidance',
    type: 'string',
    valueName: 'G',
    description: `guidance of the inversion (default ${d.inversionGuidance})`,
    parse: number('inversion-guidance'),
  },
  featRange: {
    flag: 'feat-range',
    type: 'string',
    valueName: 'A,B',
    description: `feature-injection steps [A, B) (default ${d.featRange.join(',')})`,
    parse: range('feat-range'),
  },
  adainRange: {
    flag: 'adain-range',
    type: 'string',
    valueName: 'A,B',
    description: `AdaIN steps [A, B) (default ${d.adainRange.join(',')}; cia: ${METHOD_DEFAULTS.cia.adainRange?.join(',')})`,
    parse: range('adain-range'),
  },
  seed: { flag: 'seed', type: 'string', valueName: 'S', description: `seed of the inversion noise (default ${d.seed})`, parse: number('seed') },
  size: {
    flag: 'size',
    type: 'string',
    valueName: 'PX',
    description: `short side of the working size, multiple of 64 (default ${d.size})`,
    parse: number('size'),
  },
  structureMask: { flag: 'structure-mask', type: 'string', valueName: 'FILE', description: 'object mask of the structure image (white = object)', parse: text },
  appearanceMask: {
    flag: 'appearance-mask',
    type: 'string',
    valueName: 'FILE',
    description: 'object mask of the appearance image (white = object)',
    parse: text,
  },
  structureBox: {
    flag: 'structure-box',
    type: 'string',
    valueName: 'x0,y0,x1,y1',
    description: 'SAM-HQ mask of the structure image from a box (pixels of the image file)',
    parse: box('structure-box'),
  },
  appearanceBox: {
    flag: 'appearance-box',
    type: 'string',
    valueName: 'x0,y0,x1,y1',
    description: 'SAM-HQ mask of the appearance image from a box (pixels of the image file)',
    parse: box('appearance-box'),
  },
  structurePoints: {
    flag: 'structure-point',
    type: 'string',
    valueName: 'x,y,L',
    multiple: true,
    description: 'a SAM-HQ point on the structure image, L = 1 object / 0 background (repeat for more)',
    parse: points('structure-point'),
  },
  appearancePoints: {
    flag: 'appearance-point',
    type: 'string',
    valueName: 'x,y,L',
    multiple: true,
    description: 'a SAM-HQ point on the appearance image, L = 1 object / 0 background (repeat for more)',
    parse: points('appearance-point'),
  },
  masks: {
    flag: 'masks',
    type: 'string',
    valueName: MASK_SOURCES.join('|'),
    description:
      'object masks: given (mask files or SAM-HQ prompts, the default), sam (SAM-HQ for every image, the whole-image box without a prompt, as the official run) or self-segmentation of the attention maps',
    parse: (raw) => String(raw) as NonNullable<TransferOptions['masks']>,
  },
  injection: {
    flag: 'v-injection',
    type: 'boolean',
    description: 'ablation: inject the values only (default: feature matching)',
    parse: (raw) => (raw === true ? 'vInjection' : 'match'),
  },
  fit: {
    flag: 'fit',
    type: 'string',
    valueName: FITS.join('|'),
    description: `how images reach the working size: stretch = the official loading, pixel for pixel (square, aspect not kept); cover / contain keep the aspect (default ${d.fit})`,
    parse: (raw) => String(raw) as TransferOptions['fit'],
  },
  device: {
    flag: 'device',
    type: 'string',
    valueName: DEVICES.join('|'),
    description: `execution provider (default ${d.device})`,
    parse: (raw) => String(raw) as TransferOptions['device'],
  },
  precision: {
    flag: 'precision',
    type: 'string',
    valueName: PRECISIONS.join('|'),
    description: `UNet precision: fp16 keeps norms, softmax, timestep embedding and matching in float32 (default ${d.precision})`,
    parse: (raw) => String(raw) as TransferOptions['precision'],
  },
  hookSites: {
    flag: 'hook-sites',
    type: 'string',
    valueName: 'PATHS',
    description: 'comma-separated attn1 module paths where the method acts (default: the two finest attention up blocks)',
    parse: (raw) =>
      String(raw)
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== ''),
  },
  crossAttn32Range: {
    flag: 'cross-attn-32-range',
    type: 'string',
    valueName: 'A,B',
    description: `cia: K/V swap steps [A, B) of the SD 32x32 self-attention (default ${d.crossAttn32Range.join(',')})`,
    parse: range('cross-attn-32-range'),
  },
  crossAttn64Range: {
    flag: 'cross-attn-64-range',
    type: 'string',
    valueName: 'A,B',
    description: `cia: K/V swap steps [A, B) of the SD 64x64 self-attention (default ${d.crossAttn64Range.join(',')})`,
    parse: range('cross-attn-64-range'),
  },
  swapGuidanceScale: {
    flag: 'swap-guidance',
    type: 'string',
    valueName: 'G',
    description: `cia: swap guidance, decaying to max(G/2, 1); 1 = off (default ${d.swapGuidanceScale})`,
    parse: number('swap-guidance'),
  },
  contrastStrength: {
    flag: 'contrast',
    type: 'string',
    valueName: 'C',
    description: `cia: contrast of the swapped attention maps (default ${d.contrastStrength})`,
    parse: number('contrast'),
  },
  maskedAdain: {
    flag: 'no-masked-adain',
    type: 'boolean',
    description: 'cia: AdaIN over all pixels (default: masked, with the mask images or self-segmentation)',
    parse: (raw) => raw !== true,
  },
  cacheDir: {
    flag: 'cache-dir',
    type: 'string',
    valueName: 'DIR',
    description: 'cache of built graphs and inversions (default: E4E_CACHE_DIR or the platform cache)',
    parse: text,
  },
};

/** Flags of the command itself (inputs and outputs), not part of TransferOptions. */
export const TRANSFER_COMMAND_FLAGS = {
  structure: { flag: 'structure', type: 'string', valueName: 'FILE', description: 'structure image (layout of the result) (required)' },
  appearance: { flag: 'appearance', type: 'string', valueName: 'FILE', description: 'appearance image (look of the result) (required)' },
  model: { flag: 'model', type: 'string', valueName: 'ID|DIR', description: 'Hugging Face id (from the local HF cache) or diffusers folder' },
  samModel: {
    flag: 'sam-model',
    type: 'string',
    valueName: 'ID|DIR|FILE.pth',
    description: 'SAM-HQ weights for masks from boxes / points (default syscv-community/sam-hq-vit-large; a folder or an official .pth)',
  },
  out: { flag: 'out', type: 'string', valueName: 'DIR', description: 'output folder, new or empty (default ./eye4eye-out)' },
  overwrite: { flag: 'overwrite', type: 'boolean', description: 'replace an earlier run found in --out (never other files)' },
  help: { flag: 'help', type: 'boolean', description: 'this help' },
} as const;

export const REQUIRED_FLAGS: readonly string[] = ['structure', 'appearance', 'domain'];

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** The node:util parseArgs option spec of the command. */
export function parseArgsSpec(): ParseArgsOptions {
  const spec: ParseArgsOptions = {};
  for (const f of [...Object.values(TRANSFER_COMMAND_FLAGS), ...Object.values(TRANSFER_CLI_OPTIONS)]) {
    if (f !== null) spec[f.flag] = 'multiple' in f && f.multiple === true ? { type: f.type, multiple: true } : { type: f.type };
  }
  spec['help'] = { type: 'boolean', short: 'h' };
  return spec;
}

/** TransferOptions input from parsed flag values (only the flags given). */
export function optionsFromFlags(values: Readonly<Record<string, string | boolean | string[] | undefined>>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(TRANSFER_CLI_OPTIONS) as [keyof TransferOptions, CliFlag<unknown> | null][]) {
    if (f === null) continue;
    const raw = values[f.flag];
    if (raw !== undefined) options[key] = f.parse(raw);
  }
  return options;
}

/** The flag that sets `key` (for error messages), e.g. numSteps -> --steps. */
export function flagOf(key: string): string | undefined {
  const f = (TRANSFER_CLI_OPTIONS as Record<string, CliFlag<unknown> | null>)[key];
  return f === null || f === undefined ? undefined : `--${f.flag}`;
}

/** Help lines for every flag, aligned. */
export function flagHelp(): string {
  const rows = [...Object.values(TRANSFER_COMMAND_FLAGS), ...Object.values(TRANSFER_CLI_OPTIONS)]
    .filter((f): f is NonNullable<typeof f> => f !== null)
    .map((f) => [`--${f.flag}${'valueName' in f && f.valueName !== undefined ? ` ${f.valueName}` : ''}`, f.description] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, desc]) => `    ${l.padEnd(width)}  ${desc}`).join('\n');
}
