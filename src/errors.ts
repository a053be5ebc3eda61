/**
 * The one error module. Every failure a user can act on is a FlanError carrying the gRPC status
 * name it maps to and typed context; `src/server/to-status.ts` is the single place that turns any
 * thrown value into a gRPC status. Domain layers never import grpc-js, so codes are names here.
 */
export type StatusName =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'NOT_FOUND'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'DATA_LOSS'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL';

export abstract class FlanError<C extends object = Record<string, unknown>> extends Error {
  abstract readonly code: StatusName;
  readonly context: C;

  constructor(message: string, context: C, options?: { cause?: unknown }) {
    super(message, options);
    this.context = context;
    this.name = new.target.name;
  }
}

/** A bad spec, update or command-line argument; `field` names what to fix. */
export class InvalidArgumentError extends FlanError<{ field: string }> {
  readonly code = 'INVALID_ARGUMENT';
  constructor(field: string, message: string) {
    super(`${field}: ${message}`, { field });
  }
}

/** A request that is well-formed but does not fit this server (another index, held-out set...). */
export class FailedPreconditionError extends FlanError<{ reason: string }> {
  readonly code = 'FAILED_PRECONDITION';
  constructor(reason: string, message: string) {
    super(message, { reason });
  }
}

export class ResourceExhaustedError extends FlanError<{ limit: string; value: number; max: number }> {
  readonly code = 'RESOURCE_EXHAUSTED';
  constructor(limit: string, value: number, max: number) {
    super(`${limit}: ${value} exceeds the server limit of ${max}`, { limit, value, max });
  }
}

export class UnauthenticatedError extends FlanError<Record<string, never>> {
  readonly code = 'UNAUTHENTICATED';
  constructor(message = 'missing or invalid bearer token (send "authorization: Bearer <token>")') {
    super(message, {});
  }
}

/** An index file that is missing, truncated or fails its checksum: never served as tokens. */
export class IndexCorruptError extends FlanError<{ file: string }> {
  readonly code = 'DATA_LOSS';
  constructor(file: string, message: string) {
    super(`index file ${file}: ${message}; rebuild the index with \`flanstream index\``, { file });
  }
}

/** A corpus or index path that cannot be used at all (the CLI exits non-zero). */
export class CorpusError extends FlanError<{ path: string }> {
  readonly code = 'FAILED_PRECONDITION';
  constructor(path: string, message: string) {
    super(`${path}: ${message}`, { path });
  }
}

/**
 * Object storage that cannot be used: a missing bucket or prefix, refused credentials (fix the
 * configuration: FAILED_PRECONDITION), or a store that stays unreachable after retries (UNAVAILABLE).
 */
export class StorageError extends FlanError<{ location: string }> {
  readonly code: 'FAILED_PRECONDITION' | 'UNAVAILABLE';
  constructor(location: string, message: string, transient: boolean) {
    super(`${location}: ${message}`, { location });
    this.code = transient ? 'UNAVAILABLE' : 'FAILED_PRECONDITION';
  }
}

export class ShuttingDownError extends FlanError<Record<string, never>> {
  readonly code = 'UNAVAILABLE';
  constructor() {
    super('server is shutting down; reconnect to another replica with your resume token', {});
  }
}

/** A client that took too long for something the server waits on (its first message). */
export class DeadlineError extends FlanError<{ limit: string }> {
  readonly code = 'DEADLINE_EXCEEDED';
  constructor(limit: string, message: string) {
    super(`${limit}: ${message}`, { limit });
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A thrown error carried across a worker-thread boundary (index workers, build workers). Why one
 * form: a typed FlanError must arrive as one, with its status code and context, so the CLI and
 * toStatus treat it exactly like the original; anything else arrives as an Error with its stack.
 */
export interface CarriedError {
  readonly name: string;
  readonly message: string;
  /** The gRPC status name of a FlanError; absent for anything else (INTERNAL). */
  readonly code?: string;
  readonly context?: Record<string, unknown>;
  readonly stack?: string;
}

/** An error a worker threw, with its status and context (toStatus maps it like the original). */
export class CarriedFlanError extends FlanError {
  readonly code: StatusName;
  constructor(e: CarriedError & { code: string }) {
    super(e.message, e.context ?? {});
    this.code = e.code as StatusName;
    this.name = e.name;
  }
}

export function carry(err: unknown): CarriedError {
  if (err instanceof FlanError)
    return {
      name: err.name,
      message: err.message,
      code: err.code,
      context: { ...(err.context as Record<string, unknown>) },
    };
  return {
    name: err instanceof Error ? err.name : 'Error',
    message: describeError(err),
    ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
  };
}

export function revive(e: CarriedError): Error {
  if (e.code) return new CarriedFlanError(e as CarriedError & { code: string });
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}
