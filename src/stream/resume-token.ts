import { createHmac, timingSafeEqual } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { checkObject, refuse, STATE_FIELD } from '../mix/state-check.js';
import { checksum } from '../util/hash.js';
import { specHash, type StreamSpec } from './stream-spec.js';

/**
 * Resume tokens: opaque to clients, small (a few KB), versioned and integrity-checked.
 *   unsigned: "FST" 1 ‖ checksum(16 hex bytes) ‖ msgpack(payload)
 *   signed:   "FST" 2 ‖ HMAC-SHA256(key, payload)(32 bytes) ‖ msgpack(payload)
 * They carry everything needed to continue after the batch they came with, so any replica
 * serving the same index (and the same `server.token_keys`) resumes any token. A checksum stops
 * accidents, not forgers: with a key set, only this service can mint tokens; without one, every
 * decoded field is still validated before it is used: the state's sections by their owners (see
 * STATE_SECTIONS).
 */
const MAGIC = Buffer.from('FST');
const UNSIGNED = 1;
const SIGNED = 2;
const SUM = 16;
const MAC = 32;

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

/**
 * Largest step a token may carry: far beyond any training run (2^48 steps), far enough below 2^53
 * that every later step of the stream is still an exact integer (2^53 − 1 used to pass, and the
 * next step's token failed with INTERNAL).
 */
const MAX_STEP = 2 ** 48;

const mac = (key: string, body: Uint8Array): Buffer => createHmac('sha256', key).update(body).digest();

/**
 * The HMAC keys of tokens (server.token_keys): the first signs, every one verifies, so a key is
 * rotated by putting the new one first and dropping the old one once no checkpoint needs it.
 * Empty: tokens are checksummed, not signed.
 */
export type TokenKeys = readonly string[];

/** Encodes a payload; with keys the token is HMAC-signed with the first. */
export function encodeToken(payload: TokenPayload, keys: TokenKeys = []): Buffer {
  const body = pack(payload);
  const key = keys[0] ?? '';
  const signed = key !== '';
  // One buffer of its own per token, written in place: a token is built for every batch and is a
  // few KB, so Buffer.concat's pooled allocation (plus a Buffer per piece) retired an 8 KB pool
  // every other batch and showed up as ~10 % of a `packing: none` batch's CPU.
  const head = 4 + (signed ? MAC : SUM);
  const out = Buffer.allocUnsafeSlow(head + body.length);
  MAGIC.copy(out, 0);
  out[3] = signed ? SIGNED : UNSIGNED;
  if (signed) mac(key, body).copy(out, 4);
  else out.write(checksum(body), 4, SUM, 'latin1');
  out.set(body, head);
  return out;
}

const bad = (msg: string): InvalidArgumentError => new InvalidArgumentError('resume.token', msg);

/** The payload bytes of a token, once its checksum or (with keys) its signature by one of them holds. */
function verifiedBody(buf: Buffer, keys: TokenKeys): Buffer {
  const key = keys[0] ?? '';
  if (buf.length < 4 || !buf.subarray(0, 3).equals(MAGIC)) throw bad('not a flanstream resume token');
  const version = buf[3];
  if (version !== UNSIGNED && version !== SIGNED)
    throw bad(`token version ${String(version)} is not supported (expected ${UNSIGNED} or ${SIGNED})`);
  if (key !== '' && version !== SIGNED)
    throw bad('token is not signed; this server only accepts tokens signed with one of its server.token_keys');
  if (key === '' && version === SIGNED)
    throw bad('token is signed but this server has no server.token_keys; give every replica the same keys');
  const head = 4 + (version === SIGNED ? MAC : SUM);
  if (buf.length < head) throw bad('token is truncated');
  const body = buf.subarray(head);
  if (version === SIGNED) {
    const given = buf.subarray(4, head);
    // Every key is tried (no early exit), so the time taken says nothing about which one matched.
    let ok = false;
    for (const k of keys) ok = timingSafeEqual(given, mac(k, body)) || ok;
    if (!ok)
      throw bad('token signature does not match (it was modified, or signed with a key not in server.token_keys)');
  } else if (buf.toString('latin1', 4, head) !== checksum(body)) {
    throw bad('token is corrupted or was modified (checksum mismatch)');
  }
  return body;
}

/** Decodes and checks a token against this server's index; its `state` is checked by its owners (STATE_SECTIONS). */
export function decodeToken(token: Uint8Array, indexFingerprint: string, keys: TokenKeys = []): TokenPayload {
  const body = verifiedBody(Buffer.from(token.buffer, token.byteOffset, token.byteLength), keys);
  let p: TokenPayload;
  try {
    p = unpack(body) as TokenPayload;
  } catch {
    throw bad('token payload is unreadable');
  }
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.index !== 'string' ||
    typeof p.heldout !== 'string' ||
    typeof p.spec !== 'object' ||
    p.spec === null
  ) {
    throw bad('token payload is malformed');
  }
  if (!Number.isSafeInteger(p.step) || p.step < 0 || p.step > MAX_STEP)
    throw new InvalidArgumentError('resume.token.step', `must be an integer from 0 to 2^48, got ${String(p.step)}`);
  if (!Number.isSafeInteger(p.worldSize) || p.worldSize < 1)
    throw new InvalidArgumentError('resume.token.world_size', `must be a positive integer, got ${String(p.worldSize)}`);
  if (p.index !== indexFingerprint) {
    throw new FailedPreconditionError(
      'index_mismatch',
      `resume token is from index ${p.index.slice(0, 12)}..., this server serves ${indexFingerprint.slice(0, 12)}...; resume against a server with the same index`,
    );
  }
  if (specHash(p.spec) !== p.specHash) throw bad('token spec does not match its hash');
  return p;
}

/** What every token of one stream carries unchanged. */
export interface TokenHead {
  readonly index: string;
  readonly heldout: string;
  readonly spec: StreamSpec;
  readonly worldSize: number;
}

/**
 * Makes and reads the tokens of one stream. Why an object: a token is made for every batch, and
 * what never changes within a stream (the spec's hash above all) is fixed here once.
 */
export class TokenMint {
  private readonly head: TokenHead & { readonly specHash: string };
  private readonly keys: TokenKeys;

  /** `keys`: server.token_keys (the first signs; [] = unsigned). */
  constructor(head: TokenHead, keys: TokenKeys) {
    this.head = { ...head, specHash: specHash(head.spec) };
    this.keys = keys;
  }

  /** The token of `state` before global step `step`. */
  make(step: number, state: unknown): Buffer {
    const h = this.head;
    // Field order is the token's byte order: keep it.
    return encodeToken(
      { index: h.index, heldout: h.heldout, specHash: h.specHash, spec: h.spec, step, worldSize: h.worldSize, state },
      this.keys,
    );
  }

  /** A token of this stream, decoded and checked against the index (its `state` is checked by its owners). */
  read(token: Uint8Array): TokenPayload {
    return decodeToken(token, this.head.index, this.keys);
  }
}

/**
 * The sections of a token's state per kind of plan, and the owner that makes each (`state()`)
 * and checks it when restoring it (`restore`, refusing a bad field by name). A section not listed
 * is refused, so no unchecked field reaches a planner; a new section is one line here and its
 * owner's pair.
 */
export const STATE_SECTIONS = {
  train: {
    sampler: 'mix/sampler.ts',
    walker: 'mix/task-walker.ts',
    pool: 'pack/pending-state.ts',
    stats: 'stream/stream-stats.ts',
    mixture: 'stream/train-planner.ts',
    pending: 'stream/train-planner.ts',
    shares: 'stream/share-window.ts (absent in older tokens)',
    policy: 'mix/policy/policy-runner.ts (streams whose mixture has a policy)',
  },
  eval: {
    cursor: 'stream/eval-planner.ts',
    stats: 'stream/stream-stats.ts',
  },
} as const;

/** A token's state as its sections (for their owners to restore), once it has no section the table does not list. */
export function stateSections<K extends keyof typeof STATE_SECTIONS>(
  state: unknown,
  kind: K,
): Partial<Record<keyof (typeof STATE_SECTIONS)[K], unknown>> {
  const s = checkObject(STATE_FIELD, state);
  for (const key of Object.keys(s))
    if (!(key in STATE_SECTIONS[kind])) refuse(`${STATE_FIELD}.${key}`, 'is not part of a token this server makes');
  return s as Partial<Record<keyof (typeof STATE_SECTIONS)[K], unknown>>;
}
