import { status as Status, type ServiceError } from '@grpc/grpc-js';

/**
 * A failed call to a flanstream server, or a malformed answer from one.
 *
 * `code` is the gRPC status code (`Status.INVALID_ARGUMENT` for a bad spec, naming the field in
 * `details`; `FAILED_PRECONDITION` for a resume token from another index or held-out set;
 * `UNAVAILABLE` once every reconnection attempt failed; `DATA_LOSS` for a batch that does not
 * decode). `metadata` holds the server's `flanstream-*` trailers (e.g. `flanstream-field`).
 */
export class FlanStreamError extends Error {
  readonly code: Status;
  readonly details: string;
  readonly target: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(code: Status, details: string, target?: string, metadata: Record<string, string> = {}) {
    super(`${Status[code] ?? String(code)}${target ? ` from ${target}` : ''}: ${details}`);
    this.name = 'FlanStreamError';
    this.code = code;
    this.details = details;
    this.target = target;
    this.metadata = metadata;
  }

  /** The status code's name, e.g. `"INVALID_ARGUMENT"`. */
  get codeName(): string {
    return Status[this.code] ?? String(this.code);
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}

/** Any thrown value (usually a grpc-js `ServiceError`) as a {@link FlanStreamError}. */
export function toFlanStreamError(err: unknown, target?: string): FlanStreamError {
  if (err instanceof FlanStreamError) return err;
  if (isServiceError(err)) {
    const md: Record<string, string> = {};
    for (const [k, v] of Object.entries(err.metadata?.getMap() ?? {})) md[k] = typeof v === 'string' ? v : v.toString();
    return new FlanStreamError(err.code, err.details, target, md);
  }
  return new FlanStreamError(
    Status.UNKNOWN,
    err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    target,
  );
}

/** A batch message that does not decode (inconsistent lengths, ranges or overlaps). */
export function malformed(message: string): FlanStreamError {
  return new FlanStreamError(Status.DATA_LOSS, `malformed batch: ${message}`);
}
