import type { AudioLayout } from './audio-layout.js';

/**
 * The MusicGen/Moshi delay pattern: codebook c is shifted right by c frames, so step t holds
 * codebook c of frame t − c, and a model predicts the coarse codebooks of a frame before its fine
 * ones. Steps where frame t − c does not exist hold the pad id. k codebooks over F frames take
 * F + k − 1 steps of k tokens, flattened step-major.
 */
export const DELAY: AudioLayout = {
  name: 'delay',
  tokens: (frames, k) => (frames + k - 1) * k,
  write(src, q, k, pad, out, at) {
    const frames = src.length / q;
    const steps = frames + k - 1;
    for (let t = 0; t < steps; t++) {
      for (let c = 0; c < k; c++) {
        const f = t - c;
        out[at++] = f >= 0 && f < frames ? (src[f * q + c] ?? pad) : pad;
      }
    }
  },
};
