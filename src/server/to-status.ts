import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { FlanError } from '../errors.js';

/** The single place any thrown value becomes a gRPC status; unexpected errors are INTERNAL. */
export function toStatus(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof FlanError) {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(err.context as Record<string, unknown>)) metadata.set(`flanstream-${k.toLowerCase()}`, String(v));
    return { code: status[err.code], details: err.message, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}
