import { Permutation } from './permutation.js';

export interface WalkerState {
  readonly cursors: number[];
  readonly epochs: number[];
}

/**
 * Walks each task's records in a seeded permutation; when a task is exhausted it starts a new
 * epoch with a fresh permutation, so no record repeats within an epoch. Memory is O(tasks).
 */
export class TaskWalker {
  private readonly sizes: ArrayLike<number>;
  private readonly seed: number;
  private readonly cursors: number[];
  private readonly epochs: number[];
  // The current permutation per task and the epoch it was made for, by task id (not Maps: next()
  // runs once per drawn example).
  private readonly perms: (Permutation | undefined)[];
  private readonly permEpoch: Float64Array;

  constructor(sizes: ArrayLike<number>, seed: number, state?: WalkerState) {
    this.sizes = sizes;
    this.seed = seed;
    this.cursors = state ? [...state.cursors] : Array.from({ length: sizes.length }, () => 0);
    this.epochs = state ? [...state.epochs] : Array.from({ length: sizes.length }, () => 0);
    this.perms = Array.from({ length: sizes.length }, () => undefined);
    this.permEpoch = new Float64Array(sizes.length);
  }

  /** The next record (index into the task's split list) of task t. */
  next(t: number): number {
    const n = this.sizes[t] ?? 0;
    if (n === 0) throw new Error(`task ${t} has no records to walk`);
    const epoch = this.epochs[t] ?? 0;
    const cursor = this.cursors[t] ?? 0;
    let perm = this.perms[t];
    if (!perm || perm.n !== n || this.permEpoch[t] !== epoch) {
      perm = new Permutation(n, this.seed, t, epoch);
      this.perms[t] = perm;
      this.permEpoch[t] = epoch;
    }
    const local = perm.at(cursor);
    if (cursor + 1 >= n) {
      this.cursors[t] = 0;
      this.epochs[t] = epoch + 1;
    } else {
      this.cursors[t] = cursor + 1;
    }
    return local;
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
