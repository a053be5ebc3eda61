import type { TextTokenizer } from './text-tokenizer.js';

/**
 * Text ids remembered across the indexer's batches. The shard builder encodes each shard's
 * distinct texts in one batch, but instructions, prompts and short labels recur in every shard of
 * a dataset, and a build worker takes a dataset's shards back to back: on the 100k sample corpus
 * the shards hold 53k distinct texts between them, only 24k of them distinct corpus-wide, and the
 * native encoder (with its per-text result objects) was about a fifth of the build's CPU.
 *
 * Encoding is a pure function of the text, so a remembered result is the result. Memory is
 * bounded by two generations: texts go into the current one; when it holds half the budget it
 * becomes the previous one (the older previous is dropped), and a hit in the previous one moves
 * back into the current one. What a shard keeps meeting stays; the rest ages out within two
 * half-budgets. The arrays handed out are shared: callers only read them.
 */
export class EncodeCache {
  private current = new Map<string, Int32Array>();
  private previous = new Map<string, Int32Array>();
  private currentBytes = 0;
  private previousBytes = 0;
  /** Texts sent to the tokenizer so far (misses), for tests and profiles. */
  encoded = 0;

  /** `budgetBytes`: the most the cache holds, texts (UTF-16) and ids together. */
  constructor(
    readonly tok: TextTokenizer,
    private readonly budgetBytes = DEFAULT_BUDGET_BYTES,
  ) {
    if (!(budgetBytes > 0))
      throw new RangeError(`EncodeCache budget must be a positive number of bytes, got ${budgetBytes}`);
  }

  /** What the cache holds now, in the bytes the budget counts. */
  get bytes(): number {
    return this.currentBytes + this.previousBytes;
  }

  /** The same ids as `tok.encodeBatch(texts)`, encoding only the texts not remembered. */
  async encodeBatch(texts: readonly string[]): Promise<Int32Array[]> {
    const out = new Array<Int32Array>(texts.length);
    const missing: string[] = [];
    const missingAt: number[] = [];
    texts.forEach((text, i) => {
      const hit = this.lookup(text);
      if (hit) out[i] = hit;
      else {
        missing.push(text);
        missingAt.push(i);
      }
    });
    if (missing.length === 0) return out;
    const ids = await this.tok.encodeBatch(missing);
    this.encoded += missing.length;
    missing.forEach((text, k) => {
      const got = ids[k]!;
      out[missingAt[k]!] = got;
      this.remember(text, got);
    });
    return out;
  }

  private lookup(text: string): Int32Array | undefined {
    const hit = this.current.get(text);
    if (hit) return hit;
    const old = this.previous.get(text);
    if (old) {
      this.previous.delete(text);
      this.previousBytes -= costOf(text, old);
      this.remember(text, old);
    }
    return old;
  }

  private remember(text: string, ids: Int32Array): void {
    const cost = costOf(text, ids);
    // A text larger than a generation would only push out everything else: not kept.
    if (cost > this.budgetBytes / 2 || this.current.has(text)) return;
    if (this.currentBytes + cost > this.budgetBytes / 2) {
      this.previous = this.current;
      this.previousBytes = this.currentBytes;
      this.current = new Map();
      this.currentBytes = 0;
    }
    this.current.set(text, ids);
    this.currentBytes += cost;
  }
}

/** Per process (or index worker): instructions and labels of a corpus fit many times over. */
const DEFAULT_BUDGET_BYTES = 32 << 20;
/** A map entry's own memory, roughly: key and value slots, the typed array object. */
const ENTRY_BYTES = 96;
const costOf = (text: string, ids: Int32Array): number => 2 * text.length + ids.byteLength + ENTRY_BYTES;
