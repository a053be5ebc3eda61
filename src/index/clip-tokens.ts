import { LRUCache } from 'lru-cache';
import { NpyFormatError, audioCodesToTokens, type NpyArray } from '../corpus/npy.js';
import type { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { clipKey } from '../util/hash.js';

/**
 * What the remembered windows' tokens may hold. A window is only found again while the resolver
 * still holds its clip (a clip read again is a new object), so this matches the resolver's clip
 * cache: one smaller than it left clips whose windows were mapped and digested again and again
 * (about 1.4× the CPU seconds of a build of the 2M-record sample).
 */
const TOKENS_BYTES = 128 << 20;

/**
 * A clip window's served tokens (`<|SOA|>` codes mapped into the vocabulary `<|EOA|>`) and its
 * clip key (SHA-1 of those tokens), made once per build instead of once per shard. Clips recur
 * across the shards of a dataset: on the 100k sample corpus the shards resolve 83k clip windows
 * between them, 37k distinct, and each was mapped and digested again in every shard using it.
 *
 * Keyed by the resolver's clip (its NpyArray object, numbered through a WeakMap) and window, in an
 * LRU bounded by the bytes of the tokens it holds: a clip has any number of windows, so tying them
 * to the clip's life in the resolver's cache left their memory unbounded. A clip the resolver
 * reads again is a new object and is mapped again, so what a shard stores is always what the
 * resolver gave it. Mapping depends on the codebook size: a build has one, and a different one
 * starts afresh.
 */
export class ClipTokens {
  private readonly clipIds = new WeakMap<NpyArray, number>();
  private nextClip = 0;
  private readonly windows: LRUCache<string, Int32Array | NpyFormatError>;
  private readonly keys = new WeakMap<Int32Array, readonly [number, number]>();
  private codebookSize = -1;

  constructor(
    private readonly tok: TextTokenizer,
    budgetBytes = TOKENS_BYTES,
  ) {
    this.windows = new LRUCache({
      maxSize: budgetBytes,
      sizeCalculation: (t) => 64 + (t instanceof Int32Array ? t.byteLength : 0),
    });
  }

  /** The tokens of frames [from, to) of `npy`, or why its codes cannot be mapped. */
  tokens(npy: NpyArray, from: number, to: number, codebookSize: number): Int32Array | NpyFormatError {
    if (codebookSize !== this.codebookSize) {
      this.windows.clear();
      this.codebookSize = codebookSize;
    }
    let clip = this.clipIds.get(npy);
    if (clip === undefined) this.clipIds.set(npy, (clip = this.nextClip++));
    const window = `${clip}:${from}:${to}`;
    let t = this.windows.get(window);
    if (t === undefined) {
      const out = new Int32Array(npy.codebooks * (to - from) + 2);
      out[0] = this.tok.special.soa;
      out[out.length - 1] = this.tok.special.eoa;
      try {
        audioCodesToTokens(npy, this.tok.vocabSize, codebookSize, out, 1, from, to);
        t = out;
      } catch (err) {
        if (!(err instanceof NpyFormatError)) throw err;
        t = err;
      }
      this.windows.set(window, t);
    }
    return t;
  }

  /** The clip key of tokens this cache made (a clip's identity in the index, see SPAN). */
  key(tokens: Int32Array): readonly [number, number] {
    let k = this.keys.get(tokens);
    if (k === undefined) this.keys.set(tokens, (k = clipKey(tokens)));
    return k;
  }
}
