import {
  COLUMN,
  COLUMN_ROWS_PER_PAGE,
  COLUMN_WIDTH,
  INDEX_FORMAT_VERSION,
  SPLIT_BIT,
  type ShardMeta,
  type TaskEntry,
} from '../index/format.js';

/**
 * The `source` axis of mixture selectors: per task, the `source` values that every train record
 * carries (what `source:<value>` takes) and those that some carry. A record's `source` is a list,
 * so a record listing two values carries both, as the filter `source == "X"` reads it.
 *
 * Read from the index, not the corpus: a shard whose records all share one source list (its
 * manifest `sources` has one entry, as when a dataset's file names one provenance) needs no read;
 * a shard with several is scanned once from its columns section (32 bytes a record, nothing
 * decoded), train records only, duplicates left out. The result is kept per index.
 */
export interface SourceColumns {
  readonly tasks: readonly TaskEntry[];
  readonly manifest: { readonly formatVersion: number; readonly shards: readonly ShardMeta[] };
  columnPage(shard: number, page: number): Int32Array;
  isExcluded(shard: number, row: number): boolean;
}

export interface TaskSources {
  /** Values every train record of the task carries, sorted ([] without train records). */
  readonly every: readonly string[];
  /** Values some train record carries, sorted. */
  readonly some: readonly string[];
}

/** Whether the index records sources (format 9 has no columns and no source lists). */
export const recordsSources = (ix: SourceColumns): boolean => ix.manifest.formatVersion === INDEX_FORMAT_VERSION;

interface State {
  /** Per scanned shard: per local task, the source-list ids of its train records. */
  readonly scanned: Map<number, readonly Set<number>[]>;
  result?: readonly TaskSources[];
}
const states = new WeakMap<SourceColumns, State>();

function stateOf(ix: SourceColumns): State {
  let s = states.get(ix);
  if (!s) states.set(ix, (s = { scanned: new Map() }));
  return s;
}

/** Shards holding train records under more than one source list: the ones a scan reads. */
function mixedShards(ix: SourceColumns): number[] {
  const out = new Set<number>();
  for (const t of ix.tasks)
    for (const [shard] of t.runs[0] ?? []) if ((ix.manifest.shards[shard]?.sources.length ?? 0) > 1) out.add(shard);
  return [...out].sort((a, b) => a - b);
}

function scan(ix: SourceColumns, shard: number): readonly Set<number>[] {
  const meta = ix.manifest.shards[shard]!;
  const lists = meta.tasks.map(() => new Set<number>());
  for (let p = 0; p * COLUMN_ROWS_PER_PAGE < meta.records; p++) {
    const page = ix.columnPage(shard, p);
    for (let o = 0; o < page.length; o += COLUMN_WIDTH) {
      if ((page[o + COLUMN.SPLITS]! & SPLIT_BIT.train) === 0) continue;
      if (ix.isExcluded(shard, p * COLUMN_ROWS_PER_PAGE + o / COLUMN_WIDTH)) continue;
      lists[page[o + COLUMN.TASK]!]?.add(page[o + COLUMN.SOURCE]!);
    }
  }
  return lists;
}

function assemble(ix: SourceColumns, state: State): readonly TaskSources[] {
  const sorted = (s: Iterable<string>): string[] => [...s].sort();
  return ix.tasks.map((t) => {
    let every: Set<string> | undefined;
    const some = new Set<string>();
    for (const [shard, local] of t.runs[0] ?? []) {
      const meta = ix.manifest.shards[shard]!;
      const ids = meta.sources.length > 1 ? [...(state.scanned.get(shard)?.[local] ?? [])] : [0];
      for (const id of ids) {
        const list = meta.sources[id] ?? [];
        for (const v of list) some.add(v);
        every = every ? new Set([...every].filter((v) => list.includes(v))) : new Set(list);
      }
    }
    return { every: sorted(every ?? []), some: sorted(some) };
  });
}

/** Per task id, its train records' source values (scans the shards it must on the spot). */
export function taskSources(ix: SourceColumns): readonly TaskSources[] {
  const state = stateOf(ix);
  if (state.result) return state.result;
  for (const shard of mixedShards(ix)) if (!state.scanned.has(shard)) state.scanned.set(shard, scan(ix, shard));
  return (state.result = assemble(ix, state));
}

/** The same, pausing between the shards it scans (GetCorpusInfo, so streams go on meanwhile). */
export async function taskSourcesAsync(ix: SourceColumns, pause: () => Promise<void>): Promise<readonly TaskSources[]> {
  const state = stateOf(ix);
  for (const shard of state.result ? [] : mixedShards(ix))
    if (!state.scanned.has(shard)) {
      state.scanned.set(shard, scan(ix, shard));
      await pause();
    }
  return taskSources(ix);
}

/** Whether taskSources would answer without a read (known already, or no shard to scan). */
export function taskSourcesReady(ix: SourceColumns): boolean {
  const state = states.get(ix);
  return state?.result !== undefined || mixedShards(ix).length === 0;
}
