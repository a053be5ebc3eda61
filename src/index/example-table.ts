import { LIST_PAGE_ENTRIES } from './format.js';
import type { IndexReader, SplitIndex } from './index-reader.js';
import type { PageRef } from './page-keys.js';

/** Where an example lives and how it is laid out in its shard's token data. */
export interface ExampleLoc {
  readonly task: number;
  /** Position in the task's record list for the split (what task permutations walk). */
  readonly i: number;
  readonly shard: number;
  readonly row: number;
}

/** Per run of a task, in `runs`: its shard, its local task index there, and where its list starts in the shard's lists section, or −1 if the list has excluded entries. */
const RUN_SHARD = 0;
const RUN_LOCAL = 1;
const RUN_LIST = 2;
const RUN_WIDTH = 3;

/**
 * Maps (task, i) — the i-th record of a task in one split — to its shard and row through the
 * manifest's per-task runs: O(shards of the task) memory, O(log shards) per lookup. The runs are
 * copied into one typed array per task: locate runs once per drawn example, and following the
 * manifest's objects (task, its runs, the run's tuple, the shard's task entry and its offsets)
 * cost more than the search itself, mostly in cache misses.
 */
export class ExampleTable {
  readonly reader: IndexReader;
  readonly split: SplitIndex;
  private readonly cum: Float64Array[];
  private readonly runs: Int32Array[];

  constructor(reader: IndexReader, split: SplitIndex) {
    this.reader = reader;
    this.split = split;
    this.cum = reader.tasks.map((t) => {
      const runs = t.runs[split] ?? [];
      const c = new Float64Array(runs.length + 1);
      runs.forEach(([, , n], i) => (c[i + 1] = (c[i] ?? 0) + n));
      return c;
    });
    this.runs = reader.tasks.map((t) => {
      const runs = t.runs[split] ?? [];
      const out = new Int32Array(runs.length * RUN_WIDTH);
      runs.forEach(([shard, local], r) => {
        const entry = reader.shard(shard).tasks[local];
        // A list with excluded entries (duplicate uuids) goes through listAt, which skips them.
        const direct = entry !== undefined && reader.listCount(shard, local, split) === entry.counts[split];
        out.set([shard, local, direct ? entry.listOffsets[split] : -1], r * RUN_WIDTH);
      });
      return out;
    });
  }

  size(task: number): number {
    const c = this.cum[task];
    return c ? (c[c.length - 1] ?? 0) : 0;
  }

  /** The run of `task` holding its record i: its offset in the task's runs, or -1 when i is not one of its records. */
  private runOf(task: number, i: number): number {
    const c = this.cum[task];
    const runs = this.runs[task];
    if (!c || !runs) throw new RangeError(`no task ${task}`);
    if (!(i >= 0 && i < (c[c.length - 1] ?? 0))) return -1;
    let lo = 0;
    let hi = runs.length / RUN_WIDTH - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((c[mid] ?? 0) <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  locate(task: number, i: number): ExampleLoc {
    const lo = this.runOf(task, i);
    const runs = this.runs[task]!;
    const o = lo * RUN_WIDTH;
    const shard = runs[o + RUN_SHARD] ?? 0;
    const k = i - (this.cum[task]![lo] ?? 0);
    const list = runs[o + RUN_LIST] ?? -1;
    // k is in the run's list exactly when i is in the task's records (the runs partition them).
    const row =
      lo < 0
        ? undefined
        : list >= 0
          ? this.reader.listEntry(shard, list + k)
          : this.reader.listAt(shard, runs[o + RUN_LOCAL] ?? 0, this.split, k);
    if (row === undefined) throw new RangeError(`task ${task} has no record ${i}`);
    return { task, i, shard, row };
  }

  /**
   * The lists page `locate(task, i)` reads, found without reading (undefined when i is not a
   * record of the task, or its list has excluded entries): what planning reads ahead.
   */
  listPage(task: number, i: number): PageRef | undefined {
    const lo = this.runOf(task, i);
    if (lo < 0) return undefined;
    const runs = this.runs[task]!;
    const list = runs[lo * RUN_WIDTH + RUN_LIST] ?? -1;
    if (list < 0) return undefined;
    const at = list + i - (this.cum[task]![lo] ?? 0);
    return { shard: runs[lo * RUN_WIDTH + RUN_SHARD] ?? 0, section: 'lists', page: Math.floor(at / LIST_PAGE_ENTRIES) };
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
