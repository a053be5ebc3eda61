/**
 * How a clip's codes become a token sequence (docs/real-data.md). The index stores every clip once, in
 * the flat layout over all its codebooks; a layout re-arranges those stored ids at stream time,
 * so one index serves several model recipes. A layout is one small file registered in
 * registry.ts: adding one touches no packing, resume or stats code.
 */
export interface AudioLayout {
  readonly name: string;
  /**
   * Tokens for a clip of `frames` frames over its first `k` codebooks, `<|SOA|>`/`<|EOA|>`
   * excluded. Must not decrease as k grows (minimum lengths beyond the precomputed k rely on it).
   */
  tokens(frames: number, k: number): number;
  /**
   * Writes those tokens at `out[at…]` from `src`: `frames × q` vocabulary ids of all `q` stored
   * codebooks, frame-major (frame 0: q0..q(q-1), frame 1: …). `pad` fills positions without a code.
   */
  write(src: Int32Array, q: number, k: number, pad: number, out: Int32Array, at: number): void;
}
