/**
 * A set of small non-negative integers that answers "the largest member ≤ x" in a few word
 * operations: 32-bit words of members, and above them levels of words marking which words below
 * are non-empty, up to a single word. Why: the best-fit packer asks, once per packed example, for
 * the longest pending unit that fits the space left in a row; scanning every pending unit (the
 * window, 256 by default) for it was a measurable share of planning short examples.
 */
export class LevelBitset {
  /** levels[0] holds the members; levels[k + 1] bit j says levels[k] word j is non-zero. */
  private readonly levels: Uint32Array[];
  /** Members are 0 … size − 1. */
  readonly size: number;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`LevelBitset size must be a positive integer, got ${size}`);
    this.size = size;
    const levels: Uint32Array[] = [];
    let bits = size;
    do {
      const words = Math.ceil(bits / 32);
      levels.push(new Uint32Array(words));
      bits = words;
    } while (bits > 1);
    this.levels = levels;
  }

  add(x: number): void {
    let i = x;
    for (const words of this.levels) {
      const w = i >>> 5;
      const before = words[w]!;
      words[w] = before | (1 << (i & 31));
      if (before !== 0) return;
      i = w;
    }
  }

  delete(x: number): void {
    let i = x;
    for (const words of this.levels) {
      const w = i >>> 5;
      const after = words[w]! & ~(1 << (i & 31));
      words[w] = after;
      if (after !== 0) return;
      i = w;
    }
  }

  /** The largest member ≤ x (x is clamped to size − 1), or −1 when there is none. */
  atMost(x: number): number {
    if (x < 0) return -1;
    let i = Math.min(x, this.size - 1);
    let level = 0;
    // Up: the first level whose word holding i has a set bit at or below i.
    for (;;) {
      const w = i >>> 5;
      const m = this.levels[level]![w]! & (0xffffffff >>> (31 - (i & 31)));
      if (m !== 0) {
        i = (w << 5) | (31 - Math.clz32(m));
        break;
      }
      if (w === 0) return -1;
      i = w - 1;
      level++;
    }
    // Down: the highest set bit of each word on the way back to the members.
    while (level > 0) {
      level--;
      i = (i << 5) | (31 - Math.clz32(this.levels[level]![i]!));
    }
    return i;
  }
}
