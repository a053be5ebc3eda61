import { PAGE_BYTES, ROW, ROWS_PER_PAGE, SPAN, SPAN_WIDTH, type PagedSection } from './format.js';
import type { PageRef } from './page-keys.js';
import type { Residency } from './page-pins.js';
import type { ShardPages } from './shard-pages.js';

/** A record a planned step serves: its shard and row. */
export interface RecordRef {
  readonly shard: number;
  readonly row: number;
}

/** What finding a record's pages reads of it (the index reader, from pages already held). */
export interface RecordFields {
  row(i: number, row: number): Int32Array;
  spans(i: number, first: number, count: number): Int32Array;
}

/**
 * Holding the pages a batch of records reads, found from the records' rows: a planned step's
 * read-ahead (index-reader.ts `residentFor`). Steps take their pages one after another (each
 * step's reads still run in parallel).
 */
export class RecordPages {
  /** The last step to take its pages. */
  private admission: Promise<void> = Promise.resolve();

  constructor(
    private readonly pages: ShardPages,
    private readonly fields: RecordFields,
  ) {}

  /**
   * Holds every page building a batch of these records reads: their rows first (what the rest
   * is found from), then their tokens, audio spans, uuids and answer texts, and with `audioIds`
   * the ids of their audio spans. A step waiting for room under `prefetch_bytes` between its
   * phases then holds part of the room only while every other holder has all it needs, builds
   * and releases, so waiting never deadlocks.
   */
  residentFor(records: readonly RecordRef[], audioIds: boolean): Promise<Residency> {
    const turn = this.admission.then(() => this.acquire(records, audioIds));
    this.admission = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async acquire(records: readonly RecordRef[], audioIds: boolean): Promise<Residency> {
    const held: Residency[] = [];
    const hold = async (refs: PageRef[]): Promise<void> => {
      held.push(await this.pages.prefetch(refs));
    };
    try {
      await hold(records.map((r) => ({ shard: r.shard, section: 'rows', page: Math.floor(r.row / ROWS_PER_PAGE) })));
      const refs: PageRef[] = [];
      for (const { shard, row } of records) {
        const f = this.fields.row(shard, row);
        const start = f[ROW.TOK_START]!;
        const len = f[ROW.INSTR_LEN]! + f[ROW.INPUT_LEN]! + f[ROW.OUTPUT_LEN]!;
        pagesOf(refs, shard, 'tokens', start * 4, len * 4);
        pagesOf(refs, shard, 'spans', f[ROW.SPAN_START]! * SPAN_WIDTH * 4, f[ROW.SPAN_COUNT]! * SPAN_WIDTH * 4);
        pagesOf(refs, shard, 'strings', f[ROW.UUID_OFF]!, f[ROW.UUID_LEN]!);
        pagesOf(refs, shard, 'strings', f[ROW.OUT_TEXT_OFF]!, f[ROW.OUT_TEXT_LEN]!);
      }
      await hold(refs);
      if (audioIds) {
        const ids: PageRef[] = [];
        for (const { shard, row } of records) {
          const f = this.fields.row(shard, row);
          const spans = this.fields.spans(shard, f[ROW.SPAN_START]!, f[ROW.SPAN_COUNT]!);
          for (let o = 0; o < spans.length; o += SPAN_WIDTH)
            pagesOf(ids, shard, 'strings', spans[o + SPAN.ID_OFF]!, spans[o + SPAN.ID_LEN]!);
        }
        await hold(ids);
      }
    } catch (err) {
      for (const h of held) h.release();
      throw err;
    }
    return joined(held);
  }
}

/** Several residencies as one: released together. */
export function joined(held: Residency[]): Residency {
  return {
    bytes: held.reduce((a, h) => a + h.bytes, 0),
    read: held.reduce((a, h) => a + h.read, 0),
    release: () => {
      for (const h of held.splice(0)) h.release();
    },
  };
}

/** Adds the pages holding bytes [off, off + len) of a section to `out` (none for an empty range). */
export function pagesOf(out: PageRef[], shard: number, section: PagedSection, off: number, len: number): void {
  if (len <= 0) return;
  const size = PAGE_BYTES[section];
  for (let p = Math.floor(off / size); p * size < off + len; p++) out.push({ shard, section, page: p });
}
