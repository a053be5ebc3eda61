import type { AudioLayout } from './audio-layout.js';
import { audioLayout, DEFAULT_AUDIO_LAYOUT } from './registry.js';

/** A stream's audio choice (docs/real-data.md): the first `codebooks` codebooks (0 = all) in `layout`. */
export interface AudioSpec {
  readonly codebooks: number;
  readonly layout: string;
}

/**
 * Stored clips (`<|SOA|>`, frames × Q flat ids, `<|EOA|>`) as a stream serves them under its
 * AudioSpec. The identity view (flat over all codebooks) lets callers skip all re-arranging, so the
 * default stream reads tokens exactly as before.
 */
export class AudioView {
  readonly identity: boolean;
  private scratch = new Int32Array(0);

  constructor(
    readonly layout: AudioLayout,
    /** Codebooks served, 1 ≤ k ≤ q. */
    readonly k: number,
    /** Codebooks stored (the corpus's). */
    readonly q: number,
    readonly pad: number,
  ) {
    this.identity = layout === DEFAULT_AUDIO_LAYOUT && k === q;
  }

  static of(spec: AudioSpec | undefined, q: number, pad: number): AudioView {
    const layout = (spec && audioLayout(spec.layout)) ?? DEFAULT_AUDIO_LAYOUT;
    return new AudioView(layout, spec?.codebooks ? spec.codebooks : q, q, pad);
  }

  /** Served length of a stored span of `stored` tokens (markers included). */
  spanLength(stored: number): number {
    return this.identity ? stored : this.layout.tokens((stored - 2) / this.q, this.k) + 2;
  }

  /** A buffer of at least n ints, reused: spans are written one at a time. */
  buffer(n: number): Int32Array {
    if (this.scratch.length < n) this.scratch = new Int32Array(Math.max(n, 2 * this.scratch.length));
    return this.scratch.subarray(0, n);
  }

  /** Writes the served form of a stored span (markers included) at out[at…]; returns its length. */
  writeSpan(stored: Int32Array, out: Int32Array, at: number): number {
    if (this.identity) {
      out.set(stored, at);
      return stored.length;
    }
    const n = this.spanLength(stored.length);
    out[at] = stored[0] ?? 0;
    this.layout.write(stored.subarray(1, stored.length - 1), this.q, this.k, this.pad, out, at + 1);
    out[at + n - 1] = stored[stored.length - 1] ?? 0;
    return n;
  }
}
