/**
 * The `transfer` command's flags as a typed table derived from TransferOptions (docs/architecture.md, "House rules"): every option has
 * a flag or an explicit `null`, so an option cannot be added to the library without deciding its CLI form.
 * Parsers only turn text into values; the ranges and rules are checked once, by validateTransferOptions.
 */
import { FITS } from '../io/fit.js';
import { DEFAULT_TRANSFER_OPTIONS, DEVICES, METHOD_NAMES, PRECISIONS, type TransferOptions } from '../pipeline/options.js';

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
  parse: (raw: string | boolean) => V;
}

export type CliOptions<T> = { readonly [K in keyof Required<T>]-?: CliFlag<Required<T>[K]> | null };

function text(raw: string | boolean): string {
  return String(raw);
}

function number(flag: string): (raw: string | boolean) => number {
  return (raw) => {
    const s = String(raw).trim();
    const v = Number(s);
    if (s === '' || !Number.isFinite(v)) throw new UsageError(`--${flag}: expected a number but received '${String(raw)}'`);
    return v;
  };
}

function range(flag: string): (raw: string | boolean) => readonly [number, number] {
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
    description: `classifier-free guidance of the transfer (default ${d.guidanceScale})`,
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
    description: `AdaIN steps [A, B) (default ${d.adainRange.join(',')})`,
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
  out: { flag: 'out', type: 'string', valueName: 'DIR', description: 'output folder, new or empty (default ./eye4eye-out)' },
  overwrite: { flag: 'overwrite', type: 'boolean', description: 'replace an earlier run found in --out (never other files)' },
  help: { flag: 'help', type: 'boolean', description: 'this help' },
} as const;

export const REQUIRED_FLAGS: readonly string[] = ['structure', 'appearance', 'domain'];

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** The node:util parseArgs option spec of the command. */
export function parseArgsSpec(): ParseArgsOptions {
  const spec: ParseArgsOptions = {};
  for (const f of [...Object.values(TRANSFER_COMMAND_FLAGS), ...Object.values(TRANSFER_CLI_OPTIONS)]) {
    if (f !== null) spec[f.flag] = { type: f.type };
  }
  spec['help'] = { type: 'boolean', short: 'h' };
  return spec;
}

/** TransferOptions input from parsed flag values (only the flags given). */
export function optionsFromFlags(values: Readonly<Record<string, string | boolean | undefined>>): Record<string, unknown> {
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
