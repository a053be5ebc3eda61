import { BlockOrder, type BlockShape } from './block-order.js';
import { Permutation } from './permutation.js';
import { checkInts, checkObject } from './state-check.js';

export interface WalkerState {
  readonly cursors: number[];
  readonly epochs: number[];
}

/** One task epoch's order: a bijection of [0, n), by position, and its inverse. */
export interface EpochOrder {
  readonly n: number;
  at(i: number): number;
  /** The position of record x: at(indexOf(x)) = x. */
  indexOf(x: number): number;
}

/**
 * Walks each task's records in a seeded order; when a task is exhausted it starts a new epoch
 * with a fresh order, so no record repeats within an epoch. The order is a permutation of the
 * whole task (`global`), or with `blocks` (one shape per task) a block order (block-order.ts).
 * Either is a function of (seed, task, epoch) and the position, so the cursors and epochs are the
 * whole state. Memory is O(tasks).
 */
export class TaskWalker {
  private readonly sizes: ArrayLike<number>;
  private readonly seed: number;
  private readonly blocks: readonly BlockShape[] | undefined;
  private readonly cursors: number[];
  private readonly epochs: number[];
  // The current order per task and the epoch it was made for, by task id (not Maps: next()
  // runs once per drawn example).
  private readonly perms: (EpochOrder | undefined)[];
  private readonly permEpoch: Float64Array;

  constructor(sizes: ArrayLike<number>, seed: number, state?: WalkerState, blocks?: readonly BlockShape[]) {
    this.sizes = sizes;
    this.seed = seed;
    this.blocks = blocks;
    this.cursors = Array.from({ length: sizes.length }, () => 0);
    this.epochs = Array.from({ length: sizes.length }, () => 0);
    this.perms = Array.from({ length: sizes.length }, () => undefined);
    this.permEpoch = new Float64Array(sizes.length);
    // A state made by state() in this process is taken as is; a token's goes through restore().
    if (state) this.load(state);
  }

  /**
   * Restores a token's `walker` section, checked against the task sizes: a cursor is a position
   * in its task's order of this epoch, below the task's size (a cursor at the size would send
   * Permutation.at into an endless cycle walk), and a task with no records has no epochs.
   */
  restore(value: unknown, field: string): void {
    const w = checkObject(field, value);
    const n = this.sizes.length;
    const size = (t: number): number => this.sizes[t] ?? 0;
    const cursors = checkInts(`${field}.cursors`, w.cursors, n, (t) => Math.max(0, size(t) - 1));
    const epochs = checkInts(`${field}.epochs`, w.epochs, n, (t) => (size(t) > 0 ? Number.MAX_SAFE_INTEGER : 0));
    this.load({ cursors, epochs });
  }

  private load(state: WalkerState): void {
    for (let t = 0; t < this.sizes.length; t++) {
      this.cursors[t] = state.cursors[t] ?? 0;
      this.epochs[t] = state.epochs[t] ?? 0;
    }
  }

  /** The next record (index into the task's split list) of task t. */
  next(t: number): number {
    const n = this.sizes[t] ?? 0;
    if (n === 0) throw new Error(`task ${t} has no records to walk`);
    const epoch = this.epochs[t] ?? 0;
    const cursor = this.cursors[t] ?? 0;
    const local = this.order(t, epoch).at(cursor);
    if (cursor + 1 >= n) {
      this.cursors[t] = 0;
      this.epochs[t] = epoch + 1;
    } else {
      this.cursors[t] = cursor + 1;
    }
    return local;
  }

  /** The record next() would return after `j` more draws of task t, if that is still in the current epoch (undefined past it). */
  peek(t: number, j: number): number | undefined {
    const n = this.sizes[t] ?? 0;
    const cursor = (this.cursors[t] ?? 0) + j;
    return cursor < n ? this.order(t, this.epochs[t] ?? 0).at(cursor) : undefined;
  }

  /** Task t's order in `epoch` (how next() walks its records in that epoch). */
  order(t: number, epoch: number): EpochOrder {
    const n = this.sizes[t] ?? 0;
    let perm = this.perms[t];
    if (!perm || perm.n !== n || this.permEpoch[t] !== epoch) {
      const shape = this.blocks?.[t];
      perm = shape ? new BlockOrder(n, shape, this.seed, t, epoch) : new Permutation(n, this.seed, t, epoch);
      this.perms[t] = perm;
      this.permEpoch[t] = epoch;
    }
    return perm;
  }

  /** Task t's place in its walk: next() returns order(t, epoch).at(cursor). */
  position(t: number): { readonly cursor: number; readonly epoch: number } {
    return { cursor: this.cursors[t] ?? 0, epoch: this.epochs[t] ?? 0 };
  }

  /** Moves task t's walk forward to `cursor` of `epoch`: the records in between are passed over, as if drawn and given back. */
  seek(t: number, epoch: number, cursor: number): void {
    const at = this.position(t);
    if (
      epoch < at.epoch ||
      (epoch === at.epoch && cursor < at.cursor) ||
      cursor < 0 ||
      cursor >= (this.sizes[t] ?? 0)
    ) {
      throw new RangeError(`task ${t}: cannot seek from ${at.epoch}:${at.cursor} to ${epoch}:${cursor}`);
    }
    this.cursors[t] = cursor;
    this.epochs[t] = epoch;
  }

  epoch(t: number): number {
    return this.epochs[t] ?? 0;
  }

  /** Completed passes per task (the live array: copy it to keep it). */
  get epochCounts(): readonly number[] {
    return this.epochs;
  }

  state(): WalkerState {
    return { cursors: [...this.cursors], epochs: [...this.epochs] };
  }
}
