import type { AudioLayout } from './audio-layout.js';

/** Frame-major over the first k codebooks (docs/corpus.md): frame 0 q0..q(k-1), frame 1 …; k = all is the stored form. */
export const FLAT: AudioLayout = {
  name: 'flat',
  tokens: (frames, k) => frames * k,
  write(src, q, k, _pad, out, at) {
    const frames = src.length / q;
    if (k === q) {
      out.set(src, at);
      return;
    }
    for (let f = 0; f < frames; f++) {
      const from = f * q;
      for (let c = 0; c < k; c++) out[at++] = src[from + c] ?? 0;
    }
  },
};
