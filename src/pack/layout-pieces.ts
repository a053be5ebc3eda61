import { SPAN, SPAN_WIDTH } from '../index/format.js';
import type { AudioView } from '../tokenize/audio-layouts/audio-view.js';

/**
 * A record's field as SegmentLayout lays it out: its pieces (text runs and audio spans, in stored
 * order) and the small sums over them that planning, stats and writing need. Pieces are quads in
 * one reused Int32Array, not an object each: a batch of one-codebook clips holds ~320 examples of
 * ~5 pieces, and objects per piece were a large share of the garbage a batch left behind.
 */
export const PIECE_WIDTH = 4;
/** Fields of a piece: stored at [START, START + LEN) relative to the record's first token, OUT tokens served; AUDIO 1 for a clip. */
export const PIECE = { START: 0, LEN: 1, OUT: 2, AUDIO: 3 } as const;

/** A reusable list of pieces: filled for one field, read, then filled again for the next. */
export class Pieces {
  /** PIECE_WIDTH entries per piece. */
  buf = new Int32Array(16 * PIECE_WIDTH);
  /** Pieces held. */
  n = 0;

  constructor(private readonly view: AudioView) {}

  /**
   * The pieces of the record's stored range [from, to), given its spans (SPAN_WIDTH entries
   * each): text runs between the clips that start in it; the span at index `skip` (a shared clip
   * left out of a later turn) is not a piece, and the text around it stays two runs.
   */
  fill(spans: Int32Array, from: number, to: number, skip: number): this {
    this.n = 0;
    let at = from;
    for (let s = 0, o = 0; o < spans.length; s++, o += SPAN_WIDTH) {
      const start = spans[o + SPAN.REL_START]!;
      if (start < from || start >= to) continue;
      const len = spans[o + SPAN.LENGTH]!;
      if (start > at) this.push(at, start - at, start - at, 0);
      if (s !== skip) this.push(start, len, this.view.spanLength(len), 1);
      at = start + len;
    }
    if (to > at) this.push(at, to - at, to - at, 0);
    return this;
  }

  private push(start: number, len: number, out: number, audio: number): void {
    const o = this.n * PIECE_WIDTH;
    if (o + PIECE_WIDTH > this.buf.length) {
      const grown = new Int32Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    const b = this.buf;
    b[o] = start;
    b[o + 1] = len;
    b[o + 2] = out;
    b[o + 3] = audio;
    this.n++;
  }

  /** Served tokens of all the pieces. */
  served(): number {
    let n = 0;
    for (let o = 0, end = this.n * PIECE_WIDTH; o < end; o += PIECE_WIDTH) n += this.buf[o + PIECE.OUT]!;
    return n;
  }

  /** Audio tokens (spans incl. their markers) within the first `keep` served tokens. */
  keptAudio(keep: number): number {
    return this.overKeptClips(keep, 0);
  }

  /** Codec frames of the clips within the first `keep` served tokens (q codebooks stored). */
  keptFrames(keep: number, q: number): number {
    return this.overKeptClips(keep, q);
  }

  /** One walk for both sums: served tokens of the kept clips (q = 0), or their frames. */
  private overKeptClips(keep: number, q: number): number {
    const b = this.buf;
    let left = keep;
    let n = 0;
    for (let o = 0, end = this.n * PIECE_WIDTH; o < end; o += PIECE_WIDTH) {
      const k = Math.min(left, b[o + PIECE.OUT]!);
      if (k <= 0) break;
      if (b[o + PIECE.AUDIO] === 1) n += q === 0 ? k : (b[o + PIECE.LEN]! - 2) / q;
      left -= k;
    }
    return n;
  }
}

/** Copies `xs` to out[pos…]; returns the end. */
export function put(xs: Int32Array, out: Int32Array, pos: number): number {
  out.set(xs, pos);
  return pos + xs.length;
}
