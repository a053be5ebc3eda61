import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/**
 * SHA-1 of one piece of data. The indexer takes one per clip, per page and (at merge) per uuid:
 * millions of tiny inputs, where a Hash object per call cost more than the hashing. Node's one-shot
 * `crypto.hash` (20.12+) does without; the same bytes either way, and older Node 20s fall back.
 */
const sha1: (data: string | Uint8Array) => Buffer =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha1', data, 'buffer')
    : (data) => createHash('sha1').update(data).digest();

/** Short hex digest used for checksums and fingerprints (sha256, truncated). */
export function digest(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 32);
}

/** Checksum of a byte range of a buffer; cheap enough to verify every block on first read. */
export function checksum(buf: Uint8Array): string {
  return sha1(buf).toString('hex', 0, 8);
}

/** Binary checksum of one index page (the first PAGE_DIGEST_BYTES bytes are stored). */
export function pageDigest(buf: Uint8Array): Buffer {
  return sha1(buf);
}

/** 64-bit key of a string or bytes as two int32 halves (clip contents → identity and grouping keys). */
export function key64(s: string | Uint8Array): [lo: number, hi: number] {
  const d = sha1(s);
  return [d.readInt32LE(0), d.readInt32LE(4)];
}

/** The content key of a clip's tokens; never [0, 0], which rows use for "no input clip". */
export function clipKey(tokens: Int32Array): [lo: number, hi: number] {
  const [lo, hi] = key64(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  return lo === 0 && hi === 0 ? [1, 0] : [lo, hi];
}
