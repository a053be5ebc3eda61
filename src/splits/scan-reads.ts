/**
 * How a sliced scan of the index (util/steps.ts) reads pages without reading on the spot: before
 * a chunk of records it names the pages the chunk reads (a need: the driver makes them resident
 * asynchronously and holds them), and each record's work runs through `resident`, which turns a
 * page still missed (one the chunk did not name) into a need and runs the work again. Run with
 * `finish` (no driver), needs are skipped and pages are read where they are missed.
 */
import { ROW, ROWS_PER_PAGE, SPAN, SPAN_WIDTH, type PagedSection } from '../index/format.js';
import type { IndexReader } from '../index/index-reader.js';
import type { PageRef } from '../index/page-keys.js';
import { pagesOf } from '../index/record-pages.js';
import { PageMiss } from '../index/shard-pages.js';
import type { DriveOptions, Holding, Steps } from '../util/steps.js';

/** Pages a scan is about to read. */
export interface PageNeed {
  readonly pages: readonly PageRef[];
}

export type ScanSteps<T> = Steps<T, PageNeed>;

/** Records a scan handles between two slice boundaries (a few ms of n-gram hashing at most). */
export const SCAN_CHUNK = 256;

/** `fn`'s value, run again after each page it missed is made resident (it must have no effect before it returns). */
export function* resident<T>(fn: () => T): ScanSteps<T> {
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof PageMiss)) throw err;
      yield { need: { pages: [err.ref] } };
    }
  }
}

/** Which sections of a chunk's records a scan reads besides their rows. */
export interface ChunkReads {
  /** uuids and the instruction, input and output texts. */
  readonly texts?: boolean;
  /** audio spans (and their ids among the strings). */
  readonly spans?: boolean;
}

/** Rows [from, to). */
export function range(from: number, to: number): Int32Array {
  return Int32Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k);
}

/**
 * Names the pages some rows of a shard read (a chunk of a scan, rows ascending): their rows pages
 * first, then (from the rows) the strings and spans pages asked for, each one need.
 */
export function* chunkPages(
  reader: IndexReader,
  shard: number,
  rows: ArrayLike<number>,
  what: ChunkReads,
): ScanSteps<void> {
  if (rows.length === 0) return;
  const pages = new Set<number>();
  for (let k = 0; k < rows.length; k++) pages.add(Math.floor(rows[k]! / ROWS_PER_PAGE));
  yield { need: { pages: [...pages].map((page) => ({ shard, section: 'rows' as const, page })) } };
  if (!what.texts && !what.spans) return;
  const refs = yield* resident(() => {
    const out: PageRef[] = [];
    const add = (section: PagedSection, start: number, bytes: number): void =>
      pagesOf(out, shard, section, start, bytes);
    for (let k = 0; k < rows.length; k++) {
      const f = reader.row(shard, rows[k]!);
      if (what.texts) {
        add('strings', f[ROW.INSTR_TEXT_OFF]!, f[ROW.INSTR_TEXT_LEN]!);
        add('strings', f[ROW.INPUT_TEXT_OFF]!, f[ROW.INPUT_TEXT_LEN]!);
        add('strings', f[ROW.OUT_TEXT_OFF]!, f[ROW.OUT_TEXT_LEN]!);
      }
      if (what.spans) add('spans', f[ROW.SPAN_START]! * SPAN_WIDTH * 4, f[ROW.SPAN_COUNT]! * SPAN_WIDTH * 4);
    }
    return out;
  });
  if (refs.length > 0) yield { need: { pages: dedupe(refs) } };
  if (!what.spans) return;
  // The ids of the audio spans, read from the spans.
  const ids = yield* resident(() => {
    const out: PageRef[] = [];
    for (let k = 0; k < rows.length; k++) {
      const f = reader.row(shard, rows[k]!);
      const spans = reader.spans(shard, f[ROW.SPAN_START]!, f[ROW.SPAN_COUNT]!);
      for (let o = 0; o < spans.length; o += SPAN_WIDTH)
        pagesOf(out, shard, 'strings', spans[o + SPAN.ID_OFF]!, spans[o + SPAN.ID_LEN]!);
    }
    return out;
  });
  if (ids.length > 0) yield { need: { pages: dedupe(ids) } };
}

function dedupe(refs: readonly PageRef[]): PageRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => {
    const k = `${r.section}:${r.page}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Pages [0, count) of one section of a shard, as one need (a filter's columns). */
export function* sectionPages(shard: number, section: PagedSection, count: number): ScanSteps<void> {
  if (count <= 0) return;
  yield { need: { pages: Array.from({ length: count }, (_, page) => ({ shard, section, page })) } };
}

/** Driving a scan of this index on the serving path: needs read asynchronously and held, stretches run strictly. */
export function scanReads(reader: IndexReader): Pick<DriveOptions<PageNeed>, 'need' | 'run'> {
  return {
    need: (n): Promise<Holding> => reader.prefetch(n.pages, 'miss'),
    run: (fn) => reader.strictly(fn),
  };
}
