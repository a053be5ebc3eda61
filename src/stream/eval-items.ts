import { COLUMN_ROWS_PER_PAGE, SPLIT_BIT, SPLIT_NAMES, ROW } from '../index/format.js';
import type { IndexReader, SplitIndex } from '../index/index-reader.js';
import type { ExampleLoc } from '../index/example-table.js';
import { chunkPages, resident, sectionPages, type ScanSteps } from '../splits/scan-reads.js';
import { finish } from '../util/steps.js';

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
  private readonly runs: Run[];
  readonly total: number;
  readonly perTask: number[];

  /** Bytes its runs hold, roughly (what the catalog's cache counts it as). */
  get bytes(): number {
    return 96 * this.runs.length + 8 * this.perTask.length + 64;
  }

  /**
   * `include(task, shard)`: whether the records of a task in a shard belong to the stream;
   * `keep(shard, row)`: whether the stream's filter keeps a record (absent: every record). Or
   * the runs a scan found (`scan`).
   */
  constructor(
    reader: IndexReader,
    include: ((task: number, shard: number) => boolean) | Found,
    splits: readonly SplitIndex[] = [],
    keep?: (shard: number, row: number) => boolean,
  ) {
    this.reader = reader;
    const found = typeof include === 'function' ? finish(collect(reader, include, splits, keep)) : include;
    this.runs = found.runs;
    this.perTask = found.perTask;
    this.total = found.total;
  }

  /** The items as a sliced scan (util/steps.ts), a run of a task's list between slice boundaries. */
  static *scan(
    reader: IndexReader,
    include: (task: number, shard: number) => boolean,
    splits: readonly SplitIndex[],
    keep?: (shard: number, row: number) => boolean,
  ): ScanSteps<EvalItems> {
    return new EvalItems(reader, yield* collect(reader, include, splits, keep));
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

/** The runs of an evaluation stream's items. */
interface Found {
  readonly runs: Run[];
  readonly perTask: number[];
  readonly total: number;
}

/** Finds the runs of the items, a run of a task's list between slice boundaries. */
function* collect(
  reader: IndexReader,
  include: (task: number, shard: number) => boolean,
  splits: readonly SplitIndex[],
  keep?: (shard: number, row: number) => boolean,
): ScanSteps<Found> {
  const runs: Run[] = [];
  const perTask = reader.tasks.map(() => 0);
  let before = 0;
  for (const task of reader.tasks.map((t) => t.id)) {
    for (const split of splits) {
      const earlier = splits.filter((s) => s < split).reduce<number>((m, s) => m | SPLIT_BIT[SPLIT_NAMES[s]!], 0);
      for (const [shard, local] of reader.tasks[task]?.runs[split] ?? []) {
        if (!include(task, shard)) continue;
        const list = yield* resident(() => reader.list(shard, local, split));
        // The pages read below, made resident first: the rows (for duplicates), a filter's columns.
        if (earlier !== 0) yield* chunkPages(reader, shard, list, {});
        if (keep) yield* sectionPages(shard, 'columns', Math.ceil(reader.shard(shard).records / COLUMN_ROWS_PER_PAGE));
        // Which entries of the list are served, read first (a page missed reads them again).
        const served = yield* resident(() => {
          const out = new Uint8Array(list.length);
          for (let k = 0; k < list.length; k++) {
            const row = list[k] ?? 0;
            const dup = earlier !== 0 && ((reader.row(shard, row)[ROW.SPLITS] ?? 0) & earlier) !== 0;
            out[k] = dup || (keep && !keep(shard, row)) ? 0 : 1;
          }
          return out;
        });
        let from = -1;
        const flush = (end: number): void => {
          if (from < 0) return;
          runs.push({ task, shard, local, split, from, count: end - from, before });
          before += end - from;
          perTask[task] = (perTask[task] ?? 0) + end - from;
          from = -1;
        };
        for (let k = 0; k < served.length; k++) {
          if (served[k] === 0) flush(k);
          else if (from < 0) from = k;
        }
        flush(served.length);
        yield;
      }
    }
  }
  return { runs, perTask, total: before };
}
