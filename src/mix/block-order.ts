import { hashInts, Permutation } from './permutation.js';

/**
 * The `blocks` record order of one task epoch: locality-aware shuffling. A task's records are
 * cut into blocks of consecutive records (consecutive in the index, so a block's tokens share a
 * few pages), the blocks are permuted, and the epoch walks the permuted blocks `window` at a
 * time: those blocks are open together, and every order of their records is equally likely. So a
 * stretch of draws reads about `window` blocks' pages and uses every record on them, where a
 * permutation of the whole task reads a new page per record.
 *
 * This is MosaicML Streaming's shard shuffle followed by its fixed-block shuffle (py1s + py1b),
 * with blocks in place of shards; tf.data's shuffle buffer and py1e's sliding ranges slide their
 * window one element at a time instead, but then their state is the window's content (which of
 * its records were drawn). Here the order is a pure function of (seed, task, epoch) and the
 * position, so the walker's cursor alone resumes it, exactly as for the global order.
 *
 * Each epoch also rotates the record index by a seeded offset before cutting blocks, so block
 * boundaries (which records travel together) and the one short block change from epoch to epoch.
 * The short block (n mod B records) is the last of the block order.
 */

/** Tags that keep these keys apart from the global order's (seed, task, epoch). */
const BLOCKS_KEY = 0x626c6b73;
const WITHIN_KEY = 0x77696e64;
const ROTATE_KEY = 0x726f7461;

export interface BlockShape {
  /** Records per block (≥ 1). */
  readonly block: number;
  /** Blocks open at once (≥ 1). */
  readonly window: number;
}

/**
 * Records per block of a task whose records average `meanTokens` tokens: as many as fill
 * `blockTokens` tokens, at least one. Blocks then hold about the same bytes in every task, so the
 * window is about `window` blocks' worth of pages whatever the task's record lengths.
 */
export function recordsPerBlock(meanTokens: number, blockTokens: number): number {
  return Math.max(1, Math.floor(blockTokens / Math.max(1, meanTokens)));
}

export class BlockOrder {
  readonly n: number;
  private readonly block: number;
  private readonly window: number;
  /** Records per group of `window` blocks. */
  private readonly group: number;
  private readonly fullBlocks: number;
  private readonly rotate: number;
  private readonly blocks: Permutation;
  private readonly key: readonly number[];
  private within: Permutation | undefined;
  private withinGroup = -1;

  constructor(n: number, shape: BlockShape, seed: number, task: number, epoch: number) {
    this.n = n;
    this.block = shape.block;
    this.window = shape.window;
    this.group = shape.block * shape.window;
    this.fullBlocks = Math.floor(n / shape.block);
    this.key = [seed, task, epoch];
    this.rotate = hashInts(seed, task, epoch, ROTATE_KEY) % n;
    this.blocks = new Permutation(Math.max(1, this.fullBlocks), seed, task, epoch, BLOCKS_KEY);
  }

  /** The i-th record of the epoch, 0 ≤ i < n. */
  at(i: number): number {
    // Outside [0, n) the last group's size would be ≤ 0 and its permutation would never return.
    if (!(i >= 0 && i < this.n)) throw new RangeError(`position ${i} is outside the epoch's ${this.n} records`);
    const g = Math.floor(i / this.group);
    if (g !== this.withinGroup) {
      // The last group may be short; a group changes once per window × block draws of the task.
      this.within = new Permutation(Math.min(this.group, this.n - g * this.group), ...this.key, g, WITHIN_KEY);
      this.withinGroup = g;
    }
    const o = this.within!.at(i - g * this.group);
    const slot = Math.floor(o / this.block);
    const j = g * this.window + slot;
    const b = j < this.fullBlocks ? this.blocks.at(j) : this.fullBlocks;
    const r = b * this.block + (o - slot * this.block) + this.rotate;
    return r >= this.n ? r - this.n : r;
  }

  /** The position of record x in the epoch (at, run backwards: unrotate, the block's slot, the group's permutation). */
  indexOf(x: number): number {
    if (!(x >= 0 && x < this.n)) throw new RangeError(`record ${x} is outside the epoch's ${this.n} records`);
    const r = x >= this.rotate ? x - this.rotate : x + this.n - this.rotate;
    const b = Math.floor(r / this.block);
    // Only the short block sits past the full ones, at the last slot of the block order.
    const j = b < this.fullBlocks ? this.blocks.indexOf(b) : this.fullBlocks;
    const g = Math.floor(j / this.window);
    const o = (j - g * this.window) * this.block + (r - b * this.block);
    const within = new Permutation(Math.min(this.group, this.n - g * this.group), ...this.key, g, WITHIN_KEY);
    return g * this.group + within.indexOf(o);
  }
}
