import type { TaskWalker } from './task-walker.js';

/**
 * A task's records split by whether a stream can serve them, for tasks where few can (a short
 * seq_len, a guard that removes most of a task). Record indices are positions in the task's split
 * list, ascending.
 */
export interface RecordSubset {
  /** The task's record count (the walk's domain). */
  readonly size: number;
  /** Records the stream can serve. */
  readonly pass: Int32Array;
  /**
   * Of the records it cannot serve, either those a guard of the held-out set removes
   * (`otherRemoved`) or those that do not fit (the rest): whichever set is smaller. Either one
   * tells how many passed-over records count as dropped.
   */
  readonly other: Int32Array;
  readonly otherRemoved: boolean;
}

/** A task's subset placed in one epoch's order: ascending walk positions. */
interface Placed {
  readonly epoch: number;
  readonly pass: Float64Array;
  readonly other: Float64Array;
}

/** The first index of `a` (ascending) whose value is ≥ x. */
function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Moves a task's walk straight to its next servable record instead of drawing and giving back
 * every record before it. The walk is the same: the record reached is the one rejection would
 * reach, at the same cursor and epoch, and the records passed over are counted as rejection
 * counts them (dropped unless a guard removed them). Why: when 2 of 80,000 records fit,
 * rejection examines 40,000 records per served one. Here each epoch places the subset in that
 * epoch's order once (the order's inverse per servable or other record, then a sort),
 * and each step is a binary search.
 */
export class SparseWalk {
  private readonly walker: TaskWalker;
  private readonly placed = new Map<number, Placed>();

  constructor(walker: TaskWalker) {
    this.walker = walker;
  }

  private place(t: number, epoch: number, set: RecordSubset): Placed {
    const had = this.placed.get(t);
    if (had?.epoch === epoch) return had;
    const perm = this.walker.order(t, epoch);
    const at = (records: Int32Array): Float64Array => Float64Array.from(records, (i) => perm.indexOf(i)).sort();
    const p = { epoch, pass: at(set.pass), other: at(set.other) };
    this.placed.set(t, p);
    return p;
  }

  /**
   * Seeks task t's walk to its next record in `set.pass` (the walker's next() returns it) and
   * returns how many records it passed over that count as dropped.
   */
  skip(t: number, set: RecordSubset): number {
    if (set.pass.length === 0) throw new RangeError(`task ${t} has no servable record to walk to`);
    let { cursor, epoch } = this.walker.position(t);
    let dropped = 0;
    for (;;) {
      const p = this.place(t, epoch, set);
      const k = lowerBound(p.pass, cursor);
      const end = k < p.pass.length ? p.pass[k]! : set.size;
      const other = lowerBound(p.other, end) - lowerBound(p.other, cursor);
      dropped += set.otherRemoved ? end - cursor - other : other;
      if (k < p.pass.length) {
        this.walker.seek(t, epoch, end);
        return dropped;
      }
      // Nothing servable left in this epoch: the walk goes on in the next one (which has one).
      epoch++;
      cursor = 0;
    }
  }
}
