import { timingSafeEqual, createHash } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { UnauthenticatedError } from '../errors.js';

/**
 * Bearer-token check of an `authorization` header value, with constant-time comparison (of
 * fixed-length digests, so lengths leak nothing); throws UnauthenticatedError. No tokens: open.
 */
export function makeBearerCheck(tokens: readonly string[]): (header: string | undefined) => void {
  if (tokens.length === 0) return () => undefined;
  const digests = tokens.map((t) => createHash('sha256').update(t).digest());
  return (header) => {
    const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
    if (!m?.[1]) throw new UnauthenticatedError();
    const given = createHash('sha256').update(m[1]).digest();
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    if (!ok) throw new UnauthenticatedError('bearer token not accepted');
  };
}

/** The bearer check of a gRPC call's metadata. */
export function makeAuthCheck(tokens: readonly string[]): (md: Metadata) => void {
  const check = makeBearerCheck(tokens);
  return (md) => {
    const header = md.get('authorization')[0];
    check(typeof header === 'string' ? header : header?.toString());
  };
}
