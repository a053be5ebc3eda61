import type { RawPolicy } from '../mix/policy/policy-spec.js';
import type { RawSpec } from './stream-spec.js';

/*
 * What a client asks of a stream, in the stream layer's terms: every field optional, named
 * mixtures and held-out sets not yet resolved, 64-bit integers as number or decimal string. Why
 * here and not in src/server: the stream layer validates and resolves these (named-sets.ts,
 * stream-opener.ts, stream-updates.ts) and must not import its transport. src/server hands over
 * its decoded messages, typed from the .proto (proto/generated), and compiles only while those are
 * assignable to these.
 */

export interface RawMixture extends RawPolicy {
  name?: string;
  weights?: Record<string, number>;
  within?: string;
  temperature?: number;
  cap?: number | string;
}

export interface RawHeldout {
  name?: string;
  selectors?: string[];
  datasets?: string[];
  unseenFlag?: boolean;
  excludeSharedAudio?: boolean;
  excludeOverlappingText?: number;
  inline?: boolean;
  scope?: string;
}

export interface RawUpdate extends RawMixture {
  applyAtStep?: number | string;
}

export interface RawResume {
  token?: Uint8Array;
  rank?: number;
  worldSize?: number;
  maxBatches?: number | string;
  heldout?: RawHeldout | null;
  audio?: RawSpec['audio'];
  /** The order the trainer expects ("" and 0 expect nothing). */
  shuffle?: string;
  shuffleWindow?: number;
  /** The filter the trainer expects (absent: expects nothing; an empty text expects none). */
  filter?: { text?: string } | null;
}

/** The first message of a stream: a spec or a resume token, and updates to queue at once. */
export interface RawOpen {
  spec?: (RawSpec & { mixture?: RawMixture | null; heldout?: RawHeldout | null }) | null;
  resume?: RawResume | null;
  updates?: RawUpdate[];
}
