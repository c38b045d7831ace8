/**
 * Structured errors. Every error a user can cause is a FerryError with a
 * stable code (for scripts and tests, never match on message text) and a hint
 * that says what to do next.
 */
export type ErrorCode =
  | 'USAGE'
  | 'UNKNOWN_HOST'
  | 'UNKNOWN_VM'
  | 'VM_NOT_RUNNING'
  | 'VM_RUNNING'
  | 'SAME_HOST'
  | 'UNREACHABLE'
  | 'TARGET_EXISTS'
  | 'TARGET_TOO_SMALL'
  | 'NO_SPACE'
  | 'NO_MEMORY'
  | 'INCOMPATIBLE'
  | 'INCOMPATIBLE_CPU'
  | 'SAME_HOST_UUID'
  | 'NO_NETWORK'
  | 'NO_POOL'
  | 'SECRET_PRIVATE'
  | 'UNSAFE_CACHE'
  | 'INSECURE_TRANSPORT'
  | 'BACKING_MISMATCH'
  | 'NOT_FOUND'
  | 'IN_USE'
  | 'READ_ONLY'
  | 'BAD_FORMAT'
  | 'COMMAND_FAILED'
  | 'QMP_ERROR'
  | 'QMP_TIMEOUT'
  | 'QMP_CLOSED'
  | 'AGENT_ERROR'
  | 'AGENT_GONE'
  | 'MIGRATION_FAILED'
  | 'PRECOPY_FAILED'
  | 'NO_PRECOPY'
  | 'VM_DIED'
  | 'ABORTED'
  | 'VERIFY_FAILED'
  | 'LAB'
  | 'INTERNAL';

export interface FerryErrorOptions {
  /** What the user should do about it; printed after the message. */
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable facts (paths, sizes, ranges). */
  details?: Record<string, unknown>;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** Serialisable form, used to carry errors across the agent protocol. */
  toJSON(): SerializedError {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }

  static fromJSON(e: SerializedError): FerryError {
    return new FerryError(e.code, e.message, { hint: e.hint, details: e.details });
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

/** Wraps anything thrown into a FerryError, keeping FerryErrors as they are. */
export function asFerryError(e: unknown, code: ErrorCode = 'INTERNAL'): FerryError {
  if (e instanceof FerryError) return e;
  return new FerryError(code, messageOf(e), { cause: e });
}

/** The message of anything thrown: an Error's message, else the value as text. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** True when `e` is an error of a system call (ENOENT, EINVAL, ...), and of `code` when one is given. */
export function isSystemError(e: unknown, code?: string): e is NodeJS.ErrnoException & { code: string } {
  return e instanceof Error && 'errno' in e && typeof e.errno === 'number' && 'code' in e && typeof e.code === 'string' && (code === undefined || e.code === code);
}

/** One line for humans: the message, then the hint. */
export function formatError(e: unknown): string {
  const err = asFerryError(e);
  return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
}
