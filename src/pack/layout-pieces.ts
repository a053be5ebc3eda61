/**
 * A record's fields as SegmentLayout lays them out: pieces (text runs and audio spans) and the
 * small sums over them that planning, stats and writing need. Kept apart from the layout class so
 * each file holds one concept.
 */

/** A piece of a record's field: stored at [start, start + len) relative to the record's first token, `out` tokens served. */
export interface Piece {
  readonly start: number;
  readonly len: number;
  readonly out: number;
  readonly audio: boolean;
}

export const isClip = (p: Piece): boolean => p.audio;

/** Served tokens of some pieces. */
export function served(pieces: readonly Piece[]): number {
  let n = 0;
  for (const p of pieces) n += p.out;
  return n;
}

/** Copies `xs` to out[pos…]; returns the end. */
export function put(xs: Int32Array, out: Int32Array, pos: number): number {
  out.set(xs, pos);
  return pos + xs.length;
}

/**
 * Sums `of(piece, kept)` over the clips within the first `keep` served tokens of some pieces: one
 * walk for the audio-token and the frame counts (whole records and truncated turns alike).
 */
function overKeptClips(pieces: readonly Piece[], keep: number, q: number, of: (p: Piece, kept: number, q: number) => number): number {
  let left = keep;
  let n = 0;
  for (const p of pieces) {
    const k = Math.min(left, p.out);
    if (k <= 0) break;
    if (p.audio) n += of(p, k, q);
    left -= k;
  }
  return n;
}

const servedTokens = (_p: Piece, kept: number): number => kept;
const codecFrames = (p: Piece, _kept: number, q: number): number => (p.len - 2) / q;

/** Audio tokens (spans incl. their markers) within the first `keep` served tokens of pieces. */
export function keptAudio(pieces: readonly Piece[], keep: number): number {
  return overKeptClips(pieces, keep, 1, servedTokens);
}

/** Codec frames of the clips within the first `keep` served tokens of pieces (q codebooks stored). */
export function keptFrames(pieces: readonly Piece[], keep: number, q: number): number {
  return overKeptClips(pieces, keep, q, codecFrames);
}
