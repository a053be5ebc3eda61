import { pack, unpack } from 'msgpackr';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { checksum } from '../util/hash.js';
import { specHash, type StreamSpec } from './stream-spec.js';

/**
 * Resume tokens: opaque to clients, small (a few KB), versioned and integrity-checked.
 *   "FST" version(1) ‖ checksum(16 hex bytes) ‖ msgpack(payload)
 * They carry everything needed to continue after the batch they came with, so any replica
 * serving the same index resumes any token.
 */
const MAGIC = Buffer.from('FST');
const VERSION = 1;
const SUM = 16;

export interface TokenPayload<S = unknown> {
  readonly index: string;
  readonly heldout: string;
  readonly specHash: string;
  readonly spec: StreamSpec;
  /** The next global step to build. */
  readonly step: number;
  readonly worldSize: number;
  readonly state: S;
}

export function encodeToken(payload: TokenPayload): Buffer {
  const body = pack(payload);
  return Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(checksum(body)), body]);
}

const bad = (msg: string): InvalidArgumentError => new InvalidArgumentError('resume.token', msg);

/** Decodes and checks a token against this server's index; shapes of `state` are checked by the planner. */
export function decodeToken(token: Uint8Array, indexFingerprint: string): TokenPayload {
  const buf = Buffer.from(token.buffer, token.byteOffset, token.byteLength);
  if (buf.length < 4 + SUM || !buf.subarray(0, 3).equals(MAGIC)) throw bad('not a flanstream resume token');
  if (buf[3] !== VERSION) throw bad(`token version ${String(buf[3])} is not supported (expected ${VERSION})`);
  const body = buf.subarray(4 + SUM);
  if (buf.toString('latin1', 4, 4 + SUM) !== checksum(body)) throw bad('token is corrupted or was modified (checksum mismatch)');
  let p: TokenPayload;
  try {
    p = unpack(body) as TokenPayload;
  } catch {
    throw bad('token payload is unreadable');
  }
  if (typeof p !== 'object' || p === null || typeof p.index !== 'string' || typeof p.spec !== 'object' || !Number.isSafeInteger(p.step) || p.step < 0) {
    throw bad('token payload is malformed');
  }
  if (p.index !== indexFingerprint) {
    throw new FailedPreconditionError('index_mismatch', `resume token is from index ${p.index.slice(0, 12)}…, this server serves ${indexFingerprint.slice(0, 12)}…; resume against a server with the same index`);
  }
  if (specHash(p.spec) !== p.specHash) throw bad('token spec does not match its hash');
  return p;
}
