import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { FlanError, describeError } from '../errors.js';

/** Status details and metadata travel in HTTP/2 trailers: keep them short and printable. */
const MAX_DETAILS = 1024;
const MAX_METADATA_VALUE = 256;

/**
 * grpc-js percent-encodes any non-ASCII byte of grpc-message, so "×" reached clients as "%C3%97":
 * messages leave as plain ASCII, with the symbols our messages use spelled out.
 */
const ASCII: Readonly<Record<string, string>> = {
  '×': 'x',
  '…': '...',
  '≥': '>=',
  '≤': '<=',
  '→': '->',
  '←': '<-',
  '—': '-',
  '–': '-',
  '‖': '||',
  '“': '"',
  '”': '"',
  '‘': "'",
  '’': "'",
};

export function printable(text: string, max: number): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, (c) => ASCII[c] ?? (c === '\n' || c === '\t' ? ' ' : '?'));
  return ascii.length > max ? `${ascii.slice(0, max - 3)}...` : ascii;
}

/**
 * The single place any thrown value becomes a gRPC status; unexpected errors are INTERNAL. It
 * never throws: a client-chosen string echoed in a message (a selector, a field value) is made
 * printable and bounded first, so no request can break the trailer or the connection.
 */
export function toStatus(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof FlanError) {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(err.context as Record<string, unknown>)) {
      metadata.set(`flanstream-${k.toLowerCase()}`, printable(String(v), MAX_METADATA_VALUE));
    }
    return { code: status[err.code], details: printable(err.message, MAX_DETAILS), metadata };
  }
  const message = describeError(err);
  return { code: status.INTERNAL, details: printable(`internal error: ${message}`, MAX_DETAILS) };
}
