import type { ExampleTable } from '../index/example-table.js';
import { AudioGroupsMiss } from '../index/index-reader.js';
import { ROW, ROWS_PER_PAGE, SPAN, SPAN_WIDTH } from '../index/format.js';
import { joined, pagesOf, type RecordRef } from '../index/record-pages.js';
import type { PageRef } from '../index/page-keys.js';
import type { Residency } from '../index/page-pins.js';
import { PageMiss } from '../index/shard-pages.js';
import { turns } from '../util/steps.js';
import type { Upcoming } from './stream-plan.js';

/** Pages held for a step until its batch is built. */
export interface Held {
  release(): void;
}

const NOTHING: Held = { release: () => undefined };

/**
 * How a stream plans without reading on the spot (stream-session.ts): planning runs `strictly`,
 * where a page not in memory throws a PageMiss (the shared-clip map not loaded yet, an
 * AudioGroupsMiss); `missed` reads that page and holds it (loads the map) while the step is
 * planned again from the token before it, the same step (`planStrictly`).
 * `ahead` reads what the next step will likely read before it is planned, so misses are rare:
 * the list, row and span pages of the records the plan draws next (StreamPlan.upcoming), found
 * in three rounds of concurrent reads, each from the pages the one before read. What it reads is
 * held (within planning's share of `index.prefetch_bytes`) until the step's batch is built: a
 * page the cache let go between reading ahead and planning would be a miss, read a second time,
 * one page at a time.
 * `following` overlaps steps: once a step's batch pages are held, it starts reading what the next
 * `steps` steps will likely read (`index.read_ahead_steps`), their batch pages (tokens, uuids,
 * answer texts, audio ids of examples) too, without waiting for it: those reads are in flight while the step is built and
 * sent, and the next steps find their pages in memory. It only reads: what is served never
 * depends on it (a mixture update changes nothing it did). Each lot is held, within planning's
 * share, until `steps` more steps took their pages, then let go.
 */
export interface PlanReads {
  /** Steps read ahead of the one being built (0: none). */
  readonly steps: number;
  strictly<T>(fn: () => T): T;
  /** The read a failure of `strictly` waits for (a PageMiss), holding its pages until released; undefined for any other error. */
  missed(err: unknown): Promise<Held> | undefined;
  /** Reads ahead and holds the pages planning these records reads; `batch`: building the likely ones too. */
  ahead(records: Upcoming, batch?: boolean): Promise<Held>;
  /** Starts reading ahead, without waiting, what the next `steps` steps will likely read (records); lets go of the oldest lot beyond them. */
  following(records: Upcoming | undefined): void;
  /** Lets go of everything `following` read (the stream ended or closed). */
  clear(): void;
}

/** `steps`: how many steps `following` reads ahead; `audioIds`: building reads the ids of the records' audio clips (examples). */
export function planReads(table: ExampleTable, steps = 0, audioIds = false): PlanReads {
  const reader = table.reader;
  const lots: Promise<Held>[] = [];
  const letGo = (lot: Promise<Held> | undefined): void => void lot?.then((h) => h.release());
  const reads: PlanReads = {
    steps,
    strictly: (fn) => reader.strictly(fn),
    missed: (err) =>
      err instanceof PageMiss
        ? reader.prefetch([err.ref], 'miss')
        : err instanceof AudioGroupsMiss
          ? reader.loadAudioGroups().then(() => NOTHING)
          : undefined,
    ahead: async (upcoming, batch = false) => {
      const held: Residency[] = [];
      // A very large step reads ahead for hundreds of thousands of records: the loop gets turns between.
      const t = turns();
      try {
        // What a page not held hides (no room, or evicted meanwhile) is left to planning: a miss there, read then.
        const found = (fn: () => void): void => {
          try {
            reader.strictly(fn);
          } catch (err) {
            if (!(err instanceof PageMiss)) throw err;
          }
        };
        // Locating a record reads its list entry: those not in memory are located once their pages are.
        // Building reads the likely records' pages too (those of the margin are read if drawn).
        const records: (RecordRef & { built: boolean })[] = [];
        const lists: PageRef[] = [];
        const later: number[] = [];
        const locate = (k: number): void => {
          const built = batch && k < upcoming.likely;
          records.push({ ...upcoming.records[k]!(), built });
        };
        for (let k = 0; k < upcoming.records.length; k++) {
          if (t.due()) await t.turn();
          try {
            reader.strictly(() => locate(k));
          } catch (err) {
            if (!(err instanceof PageMiss)) throw err;
            lists.push(err.ref);
            later.push(k);
          }
        }
        held.push(await reader.readAhead(lists));
        for (const k of later) {
          if (t.due()) await t.turn();
          found(() => locate(k));
        }
        const rows = records.map((r) => ({
          shard: r.shard,
          section: 'rows' as const,
          page: Math.floor(r.row / ROWS_PER_PAGE),
        }));
        held.push(await reader.readAhead(rows));
        // Spans first (planning reads them), then what building reads (see RecordPages.residentFor).
        const spans: PageRef[] = [];
        const built: PageRef[] = [];
        for (const { shard, row, built: builds } of records) {
          if (t.due()) await t.turn();
          found(() => {
            const f = reader.row(shard, row);
            pagesOf(spans, shard, 'spans', f[ROW.SPAN_START]! * SPAN_WIDTH * 4, f[ROW.SPAN_COUNT]! * SPAN_WIDTH * 4);
            if (!builds) return;
            const len = f[ROW.INSTR_LEN]! + f[ROW.INPUT_LEN]! + f[ROW.OUTPUT_LEN]!;
            pagesOf(built, shard, 'tokens', f[ROW.TOK_START]! * 4, len * 4);
            pagesOf(built, shard, 'strings', f[ROW.UUID_OFF]!, f[ROW.UUID_LEN]!);
            pagesOf(built, shard, 'strings', f[ROW.OUT_TEXT_OFF]!, f[ROW.OUT_TEXT_LEN]!);
          });
        }
        held.push(await reader.readAhead([...spans, ...built]));
        // Examples name their audio clips: the ids of their spans.
        if (batch && audioIds) {
          const ids: PageRef[] = [];
          for (const { shard, row, built: builds } of records) {
            if (t.due()) await t.turn();
            found(() => {
              if (!builds) return;
              const f = reader.row(shard, row);
              const spans = reader.spans(shard, f[ROW.SPAN_START]!, f[ROW.SPAN_COUNT]!);
              for (let o = 0; o < spans.length; o += SPAN_WIDTH)
                pagesOf(ids, shard, 'strings', spans[o + SPAN.ID_OFF]!, spans[o + SPAN.ID_LEN]!);
            });
          }
          held.push(await reader.readAhead(ids));
        }
      } catch (err) {
        for (const h of held) h.release();
        throw err;
      }
      return joined(held);
    },
    following: (upcoming) => {
      if (steps <= 0) return;
      // A failed read fails the step that needs the page (read again then), not this.
      if (upcoming && upcoming.records.length > 0) lots.push(reads.ahead(upcoming, true).catch(() => NOTHING));
      while (lots.length > steps) letGo(lots.shift());
    },
    clear: () => {
      for (const lot of lots.splice(0)) letGo(lot);
    },
  };
  return reads;
}

/** What planning one step strictly needs of a stream (stream-session.ts). */
export interface StrictStep<T> {
  /** The plan's token before the step (updates queued since the last batch included): what a miss goes back to. */
  from(): Buffer;
  /** Plans the step (strictly: a page not in memory throws a PageMiss). */
  plan(): Promise<T>;
  /** Back to the state `from` described. */
  back(from: Buffer): void;
  /** Records the step will likely draw, `depth` times as many as it expects (StreamPlan.upcoming). */
  upcoming(depth: number): Upcoming | undefined;
}

/**
 * Plans a step without reading on the spot: what it will likely read is read ahead first, and a
 * page it still misses is read while the step is planned again from the token before it (the
 * same step: planning is a function of the token), reading twice as far ahead each time. What it
 * read is pushed to `held`, for the caller to release once the step's batch is built.
 */
export async function planStrictly<T>(reads: PlanReads, step: StrictStep<T>, held: Held[]): Promise<T> {
  let depth = 1;
  const ahead = async (): Promise<void> => {
    const upcoming = step.upcoming(depth);
    if (upcoming && upcoming.records.length > 0) held.push(await reads.ahead(upcoming));
  };
  // Runs fn strictly, reading what it misses until it runs through (restoring a plan reads the records it holds back).
  const surely = async <R>(fn: () => R): Promise<R> => {
    for (;;) {
      try {
        return reads.strictly(fn);
      } catch (err) {
        const wait = reads.missed(err);
        if (!wait) throw err;
        held.push(await wait);
      }
    }
  };
  await ahead();
  for (;;) {
    const from = await surely(() => step.from());
    try {
      return await step.plan();
    } catch (err) {
      const wait = reads.missed(err);
      if (!wait) throw err;
      held.push(await wait);
      await surely(() => step.back(from));
      depth *= 2;
      await ahead();
    }
  }
}
