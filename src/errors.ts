/**
 * Typed, coded errors. Every error a user can meet is an E4EError with a stable `code`
 * and, where useful, a `hint` telling them what to do next.
 */
export type ErrorCode =
  | 'E_INVALID_PARAMETER'
  | 'E_FILE'
  | 'E_SAFETENSORS'
  | 'E_CHECKPOINT'
  | 'E_CONFIG'
  | 'E_WEIGHT_MISSING'
  | 'E_WEIGHT_SHAPE'
  | 'E_WEIGHT_UNUSED'
  | 'E_MODEL_BUILD'
  | 'E_RUNTIME'
  | 'E_GOLDEN'
  | 'E_IMAGE'
  | 'E_MODEL_NOT_FOUND'
  | 'E_ABORTED'
  | 'E_QUEUE';

export class E4EError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(options.hint === undefined ? message : `${message}\n  hint: ${options.hint}`, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
}

export class InvalidParameterError extends E4EError {
  /** The option or argument at fault (e.g. `numSteps`), when there is one. */
  readonly parameter: string | undefined;

  constructor(message: string, options: { hint?: string; parameter?: string } = {}) {
    super('E_INVALID_PARAMETER', message, options);
    this.parameter = options.parameter;
  }
}

export class FileError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_FILE', message, options);
  }
}

export class SafetensorsError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_SAFETENSORS', message, options);
  }
}

/** A PyTorch checkpoint (.pth zip) that cannot be read, or that asks for anything beyond rebuilding tensors. */
export class TorchCheckpointError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_CHECKPOINT', message, options);
  }
}

export class ConfigError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_CONFIG', message, options);
  }
}

export class WeightMissingError extends E4EError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('E_WEIGHT_MISSING', message, options);
  }
}

export class WeightShapeError extends E4EError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('E_WEIGHT_SHAPE', message, options);
  }
}

export class WeightUnusedError extends E4EError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('E_WEIGHT_UNUSED', message, options);
  }
}

export class ModelBuildError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_MODEL_BUILD', message, options);
  }
}

export class RuntimeError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_RUNTIME', message, options);
  }
}

export class GoldenError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_GOLDEN', message, options);
  }
}

export class ImageError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_IMAGE', message, options);
  }
}

export class ModelNotFoundError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_MODEL_NOT_FOUND', message, options);
  }
}

/** The job queue (Redis) cannot be reached or answers with an error. */
export class QueueError extends E4EError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('E_QUEUE', message, options);
  }
}

export class AbortError extends E4EError {
  constructor(message = 'operation aborted') {
    super('E_ABORTED', message);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `${JSON.stringify(value)} of type array`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'object') return `${JSON.stringify(value)} of type object`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined)
    return `${String(value)} of type ${typeof value}`;
  return `a value of type ${typeof value}`;
}

/**
 * The one parameter-error formatter (sharp's style):
 * `Expected integer between 1 and 1000 for numTimesteps but received 0 of type number`.
 */
export function invalidParameterError(name: string, expected: string, actual: unknown): InvalidParameterError {
  return new InvalidParameterError(`Expected ${expected} for ${name} but received ${describe(actual)}`, { parameter: name });
}
