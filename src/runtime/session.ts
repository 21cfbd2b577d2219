/**
 * The only door to onnxruntime-node: create, run, dispose; execution-provider choice; error mapping.
 * Nothing else in the code base imports onnxruntime-node.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { InvalidParameterError, RuntimeError } from '../errors.js';
import { formatDims, type DType, type Tensor, type TypedArrayOf } from '../tensor/tensor.js';

import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../onnx/target.js';

export { EXECUTION_PROVIDERS, type ExecutionProvider };

export interface SessionOptions {
  /** Execution provider; 'cpu' by default. */
  device?: ExecutionProvider;
  /** Intra-op threads (0 = onnxruntime's default: one per physical core). */
  threads?: number;
  /** The CPU memory arena speeds up repeated calls but keeps peak memory; off for very large batches. */
  memoryArena?: boolean;
  /** Graph optimisation level; 'all' by default. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Log severity (0 verbose .. 4 fatal); default from E4E_ORT_LOG, else 4 (see ortLogSeverity). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /** Nodes (by name) that run on the CPU even on a GPU provider (WebGPU's forceCpuNodeNames). */
  cpuNodes?: readonly string[];
  /**
   * Diagnostics (npm run bench): profile every run of the session. onnxruntime writes a JSON trace (one event per
   * node run, with its input and output shapes) to `${profileFilePrefix}_<date and time>.json`; `endProfiling()`
   * closes it and returns its path. Off by default; taken by `Session.create` only (StableDiffusionModel does not
   * pass it on).
   */
  profileFilePrefix?: string;
}

export type Feeds = Readonly<Record<string, Tensor>>;

function ortType(dtype: DType): ort.Tensor.Type {
  switch (dtype) {
    case 'float32':
      return 'float32';
    case 'float16':
      return 'float16';
    case 'int64':
      return 'int64';
    case 'int32':
      return 'int32';
    case 'uint8':
      return 'uint8';
    case 'bool':
      return 'bool';
    case 'float64':
      return 'float64';
    case 'int8':
      return 'int8';
    case 'int16':
      return 'int16';
    case 'uint16':
      return 'uint16';
    case 'bfloat16':
      break;
  }
  throw new InvalidParameterError(`dtype ${dtype} cannot be fed to onnxruntime`);
}

function fromOrt(name: string, t: ort.Tensor): Tensor {
  const dims = [...t.dims];
  switch (t.type) {
    case 'float32':
    case 'int64':
    case 'int32':
    case 'uint8':
    case 'float64':
    case 'int8':
    case 'int16':
    case 'uint16':
      return { dtype: t.type, dims, data: t.data as TypedArrayOf[typeof t.type] };
    case 'bool':
      return { dtype: 'bool', dims, data: t.data as Uint8Array };
    case 'float16':
      return { dtype: 'float16', dims, data: new Uint16Array((t.data as Uint16Array).buffer) };
    default:
      throw new RuntimeError(`output '${name}' has unsupported type ${t.type}`);
  }
}

/** Which execution providers this onnxruntime-node build can use here. */
export function availableProviders(): ExecutionProvider[] {
  const supported = ort.listSupportedBackends().map((b) => b.name);
  return EXECUTION_PROVIDERS.filter((p) => supported.includes(p));
}

export const ORT_VERSION: string = ort.env.versions.node ?? ort.env.versions.common;

const CUDA_HINT =
  "CUDA needs onnxruntime-node's CUDA 12 binaries: on a machine with an NVIDIA driver, CUDA 12 and cuDNN 9 run " +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --dangerously-allow-all-scripts`; see the README (GPU).';

const WEBGPU_HINT = 'WebGPU needs a GPU adapter (Vulkan on Linux, D3D12 on Windows, Metal on macOS); without one use --device cpu.';

function deviceHint(device: ExecutionProvider, cause?: unknown): { hint?: string; cause?: unknown } {
  const hint = device === 'cuda' ? CUDA_HINT : device === 'webgpu' ? WEBGPU_HINT : undefined;
  const full = hint === undefined ? undefined : `${hint} (E4E_ORT_LOG=error shows onnxruntime's own log lines)`;
  return { ...(full === undefined ? {} : { hint: full }), ...(cause === undefined ? {} : { cause }) };
}

function gpuProvider(device: Exclude<ExecutionProvider, 'cpu'>, cpuNodes: readonly string[]): ort.InferenceSession.ExecutionProviderConfig {
  if (device === 'webgpu' && cpuNodes.length > 0) return { name: 'webgpu', forceCpuNodeNames: [...cpuNodes] };
  return device;
}

/** onnxruntime's log levels, by severity (0 .. 4). */
export const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;

/**
 * The severity below which onnxruntime's own log lines are dropped: 'fatal' unless E4E_ORT_LOG names a level. Its
 * lines go straight to stderr from native code (e.g. a CUDA provider library that cannot be loaded, before the
 * exception that we turn into a RuntimeError with a hint), so by default they are off and every failure reaches the
 * user once, as our message; `E4E_ORT_LOG=warning` (or verbose) shows them when diagnosing.
 */
export function ortLogSeverity(env: NodeJS.ProcessEnv = process.env): 0 | 1 | 2 | 3 | 4 {
  const given = env['E4E_ORT_LOG'];
  if (given === undefined || given === '') return 4;
  const level = (ORT_LOG_LEVELS as readonly string[]).indexOf(given);
  if (level < 0) throw new InvalidParameterError(`Expected one of ${ORT_LOG_LEVELS.map((l) => `'${l}'`).join(', ')} for E4E_ORT_LOG but received '${given}'`);
  return level as 0 | 1 | 2 | 3 | 4;
}

let envLogSet = false;

/** onnxruntime's process-wide logger takes its level at the first session; set it before that, once. */
function setEnvLogLevel(severity: 0 | 1 | 2 | 3 | 4): void {
  if (envLogSet) return;
  envLogSet = true;
  ort.env.logLevel = ORT_LOG_LEVELS[severity];
}

export class Session {
  private disposed = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly modelName: string,
    readonly device: ExecutionProvider,
    private readonly profileFilePrefix: string | undefined,
  ) {}

  /** Create a session from a model file path or in-memory model bytes. */
  static async create(model: string | Uint8Array, options: SessionOptions & { name?: string } = {}): Promise<Session> {
    const device = options.device ?? 'cpu';
    const name = options.name ?? (typeof model === 'string' ? model : '<in-memory model>');
    if (!EXECUTION_PROVIDERS.includes(device)) {
      throw new InvalidParameterError(`Expected one of ${EXECUTION_PROVIDERS.join(', ')} for device but received '${String(device)}'`);
    }
    if (!availableProviders().includes(device)) {
      throw new RuntimeError(
        `execution provider '${device}' is not available in this onnxruntime-node build (available: ${availableProviders().join(', ')})`,
        deviceHint(device),
      );
    }
    const envSeverity = ortLogSeverity();
    setEnvLogLevel(envSeverity);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: device === 'cpu' ? ['cpu'] : [gpuProvider(device, options.cpuNodes ?? []), 'cpu'],
      graphOptimizationLevel: options.optimization ?? 'all',
      enableCpuMemArena: options.memoryArena ?? true,
      logSeverityLevel: options.logSeverity ?? envSeverity,
    };
    if (options.threads !== undefined && options.threads > 0) sessionOptions.intraOpNumThreads = options.threads;
    if (options.profileFilePrefix !== undefined) {
      sessionOptions.enableProfiling = true;
      sessionOptions.profileFilePrefix = options.profileFilePrefix;
    }
    try {
      const session =
        typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
      return new Session(session, name, device, options.profileFilePrefix);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new RuntimeError(`onnxruntime could not load model ${name} on ${device}: ${message}`, deviceHint(device, cause));
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Feeds, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.disposed) throw new RuntimeError(`session for ${this.modelName} was disposed`);
    const missing = this.session.inputNames.filter((n) => !(n in feeds));
    const unknown = Object.keys(feeds).filter((n) => !this.session.inputNames.includes(n));
    if (missing.length > 0 || unknown.length > 0) {
      throw new RuntimeError(
        `${this.modelName}: inputs do not match the model (missing: ${missing.join(', ') || 'none'}; unknown: ${unknown.join(', ') || 'none'}); expected ${this.session.inputNames.join(', ')}`,
      );
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(ortType(t.dtype), t.data as ort.Tensor.DataType, [...t.dims]);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = outputs === undefined ? await this.session.run(ortFeeds) : await this.session.run(ortFeeds, [...outputs]);
    } catch (cause) {
      const shapes = Object.entries(feeds)
        .map(([n, t]) => `${n}: ${t.dtype}${formatDims(t.dims)}`)
        .join(', ');
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new RuntimeError(`onnxruntime failed running ${this.modelName} with inputs {${shapes}}: ${message}`, { cause });
    }
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(result)) out[name] = fromOrt(name, t);
    return out;
  }

  /**
   * Ends profiling (a session created with `profileFilePrefix`) and returns the path of the trace. onnxruntime-node
   * does not return the file name, so it is the newest `${prefix}_*.json`: give each session its own prefix.
   */
  endProfiling(): string {
    const prefix = this.profileFilePrefix;
    if (prefix === undefined) throw new RuntimeError(`session for ${this.modelName} was not created with profileFilePrefix`);
    if (this.disposed) throw new RuntimeError(`session for ${this.modelName} was disposed`);
    this.session.endProfiling();
    const dir = dirname(prefix);
    const start = `${basename(prefix)}_`;
    const traces = readdirSync(dir)
      .filter((f) => f.startsWith(start) && f.endsWith('.json'))
      .map((f) => join(dir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (traces[0] === undefined) throw new RuntimeError(`${this.modelName}: onnxruntime wrote no profile ${prefix}_*.json`);
    return traces[0];
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}
