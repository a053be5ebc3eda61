import { SPLIT_BIT, SPLIT_NAMES, ROW } from '../index/format.js';
import type { IndexReader, SplitIndex } from '../index/index-reader.js';
import type { ExampleLoc } from '../index/example-table.js';

/** A run of consecutive entries of one task's split list that belong to the evaluation set. */
interface Run {
  readonly task: number;
  readonly shard: number;
  readonly local: number;
  readonly split: SplitIndex;
  readonly from: number;
  readonly count: number;
  /** Items before this run. */
  readonly before: number;
}

/**
 * The items of a finite evaluation stream in their fixed order: tasks by id, then records in
 * index order. A record listed under several splits counts once (under its first split), so
 * every example is served exactly once.
 */
export class EvalItems {
  private readonly reader: IndexReader;
  private readonly runs: Run[] = [];
  readonly total: number;
  readonly perTask: number[];

  /**
   * `include(task, shard)`: whether the records of a task in a shard belong to the stream;
   * `keep(shard, row)`: whether the stream's filter keeps a record (absent: every record).
   */
  constructor(
    reader: IndexReader,
    include: (task: number, shard: number) => boolean,
    splits: readonly SplitIndex[],
    keep?: (shard: number, row: number) => boolean,
  ) {
    this.reader = reader;
    this.perTask = reader.tasks.map(() => 0);
    let before = 0;
    for (const task of reader.tasks.map((t) => t.id)) {
      for (const split of splits) {
        const earlier = splits.filter((s) => s < split).reduce<number>((m, s) => m | SPLIT_BIT[SPLIT_NAMES[s]!], 0);
        for (const [shard, local] of reader.tasks[task]?.runs[split] ?? []) {
          if (!include(task, shard)) continue;
          const list = reader.list(shard, local, split);
          let from = -1;
          const flush = (end: number): void => {
            if (from < 0) return;
            this.runs.push({ task, shard, local, split, from, count: end - from, before });
            before += end - from;
            this.perTask[task] = (this.perTask[task] ?? 0) + end - from;
            from = -1;
          };
          for (let k = 0; k < list.length; k++) {
            const row = list[k] ?? 0;
            const dup = earlier !== 0 && ((reader.row(shard, row)[ROW.SPLITS] ?? 0) & earlier) !== 0;
            if (dup || (keep && !keep(shard, row))) flush(k);
            else if (from < 0) from = k;
          }
          flush(list.length);
        }
      }
    }
    this.total = before;
  }

  at(n: number): ExampleLoc {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.runs[mid]?.before ?? 0) <= n) lo = mid;
      else hi = mid - 1;
    }
    const r = this.runs[lo];
    if (!r || n < r.before || n >= r.before + r.count) throw new RangeError(`evaluation item ${n} out of range`);
    const k = r.from + n - r.before;
    const row = this.reader.listAt(r.shard, r.local, r.split, k) ?? 0;
    return { task: r.task, i: n, shard: r.shard, row };
  }
}
