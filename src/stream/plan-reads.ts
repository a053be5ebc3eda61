import type { ExampleTable } from '../index/example-table.js';
import { AudioGroupsMiss } from '../index/index-reader.js';
import { ROW, ROWS_PER_PAGE, SPAN_WIDTH } from '../index/format.js';
import { joined, pagesOf } from '../index/record-pages.js';
import type { PageRef } from '../index/page-keys.js';
import type { Residency } from '../index/page-pins.js';
import { PageMiss } from '../index/shard-pages.js';

/** Pages held for a step until its batch is built. */
export interface Held {
  release(): void;
}

/**
 * How a stream plans without reading on the spot (stream-session.ts): planning runs `strictly`,
 * where a page not in memory throws a PageMiss (the shared-clip map not loaded yet, an
 * AudioGroupsMiss); `missed` reads that page and holds it (loads the map) while the step is
 * planned again from the token before it, the same step.
 * `ahead` reads what the next step will likely read before it is planned, so misses are rare:
 * the list, row and span pages of the records each task's walk draws next (train-planner.ts
 * `upcoming`), found in three rounds of concurrent reads, each from the pages the one before read.
 * What it reads is held (within planning's share of `index.prefetch_bytes`) until the step's
 * batch is built: a page the cache let go between reading ahead and planning would be a miss,
 * read a second time, one page at a time.
 */
export interface PlanReads {
  strictly<T>(fn: () => T): T;
  /** The read a failure of `strictly` waits for (a PageMiss), holding its pages until released; undefined for any other error. */
  missed(err: unknown): Promise<Held> | undefined;
  /** Reads ahead and holds the pages planning these [task, record] pairs reads. */
  ahead(draws: readonly number[]): Promise<Held>;
}

export function planReads(table: ExampleTable): PlanReads {
  const reader = table.reader;
  return {
    strictly: (fn) => reader.strictly(fn),
    missed: (err) =>
      err instanceof PageMiss
        ? reader.prefetch([err.ref], 'miss')
        : err instanceof AudioGroupsMiss
          ? reader.loadAudioGroups().then(() => ({ release: () => undefined }))
          : undefined,
    ahead: async (draws) => {
      const held: Residency[] = [];
      try {
        const lists: PageRef[] = [];
        for (let k = 0; k < draws.length; k += 2) {
          const ref = table.listPage(draws[k]!, draws[k + 1]!);
          if (ref) lists.push(ref);
        }
        held.push(await reader.readAhead(lists));
        // What a page not held hides (no room, or evicted meanwhile) is left to planning: a miss there, read then.
        const found = (fn: () => void): void => {
          try {
            reader.strictly(fn);
          } catch (err) {
            if (!(err instanceof PageMiss)) throw err;
          }
        };
        const records: number[] = [];
        const rows: PageRef[] = [];
        for (let k = 0; k < draws.length; k += 2)
          found(() => {
            const loc = table.locate(draws[k]!, draws[k + 1]!);
            records.push(loc.shard, loc.row);
            rows.push({ shard: loc.shard, section: 'rows', page: Math.floor(loc.row / ROWS_PER_PAGE) });
          });
        held.push(await reader.readAhead(rows));
        const spans: PageRef[] = [];
        for (let k = 0; k < records.length; k += 2)
          found(() => {
            const shard = records[k]!;
            const f = reader.row(shard, records[k + 1]!);
            pagesOf(spans, shard, 'spans', f[ROW.SPAN_START]! * SPAN_WIDTH * 4, f[ROW.SPAN_COUNT]! * SPAN_WIDTH * 4);
          });
        held.push(await reader.readAhead(spans));
      } catch (err) {
        for (const h of held) h.release();
        throw err;
      }
      return joined(held);
    },
  };
}
