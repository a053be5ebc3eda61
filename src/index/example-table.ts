import type { IndexReader, SplitIndex } from './index-reader.js';

/** Where an example lives and how it is laid out in its shard's token data. */
export interface ExampleLoc {
  readonly task: number;
  /** Position in the task's record list for the split (what task permutations walk). */
  readonly i: number;
  readonly shard: number;
  readonly row: number;
}

/**
 * Maps (task, i) — the i-th record of a task in one split — to its shard and row through the
 * manifest's per-task runs: O(shards of the task) memory, O(log shards) per lookup.
 */
export class ExampleTable {
  readonly reader: IndexReader;
  readonly split: SplitIndex;
  private readonly cum: Float64Array[];

  constructor(reader: IndexReader, split: SplitIndex) {
    this.reader = reader;
    this.split = split;
    this.cum = reader.tasks.map((t) => {
      const runs = t.runs[split] ?? [];
      const c = new Float64Array(runs.length + 1);
      runs.forEach(([, , n], i) => (c[i + 1] = (c[i] ?? 0) + n));
      return c;
    });
  }

  size(task: number): number {
    const c = this.cum[task];
    return c ? c[c.length - 1] ?? 0 : 0;
  }

  locate(task: number, i: number): ExampleLoc {
    const c = this.cum[task];
    const runs = this.reader.tasks[task]?.runs[this.split];
    if (!c || !runs) throw new RangeError(`no task ${task}`);
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((c[mid] ?? 0) <= i) lo = mid;
      else hi = mid - 1;
    }
    const [shard, local] = runs[lo] ?? [0, 0];
    const row = this.reader.listAt(shard, local, this.split, i - (c[lo] ?? 0));
    if (row === undefined) throw new RangeError(`task ${task} has no record ${i}`);
    return { task, i, shard, row };
  }

  /** The position of (shard, row) in task's list for this split, or -1 if the record is not in it. */
  indexOf(task: number, shard: number, row: number): number {
    const runs = this.reader.tasks[task]?.runs[this.split] ?? [];
    const c = this.cum[task];
    for (let k = 0; k < runs.length; k++) {
      const [s, local] = runs[k]!;
      if (s !== shard) continue;
      // Binary search through the list's pages (consecutive probes mostly hit the same page).
      let a = 0;
      let b = this.reader.listCount(s, local, this.split);
      while (a < b) {
        const m = (a + b) >> 1;
        if ((this.reader.listAt(s, local, this.split, m) ?? 0) < row) a = m + 1;
        else b = m;
      }
      if (this.reader.listAt(s, local, this.split, a) === row) return (c?.[k] ?? 0) + a;
    }
    return -1;
  }

  /** The record's row fields (instruction, input, output lengths and more; see ROW). */
  fields(loc: ExampleLoc): Int32Array {
    return this.reader.row(loc.shard, loc.row);
  }
}
