import { timingSafeEqual, createHash } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { UnauthenticatedError } from '../errors.js';

/** Bearer-token check with constant-time comparison (of fixed-length digests, so lengths leak nothing). */
export function makeAuthCheck(tokens: readonly string[]): (md: Metadata) => void {
  if (tokens.length === 0) return () => undefined;
  const digests = tokens.map((t) => createHash('sha256').update(t).digest());
  return (md) => {
    const header = md.get('authorization')[0];
    const value = typeof header === 'string' ? header : header?.toString() ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(value);
    if (!m?.[1]) throw new UnauthenticatedError();
    const given = createHash('sha256').update(m[1]).digest();
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    if (!ok) throw new UnauthenticatedError('bearer token not accepted');
  };
}
