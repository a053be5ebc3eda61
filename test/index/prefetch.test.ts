import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PAGE_TOKENS, ROW, ROWS_PER_PAGE } from '../../src/index/format.js';
import { IndexReader, type RecordRef } from '../../src/index/index-reader.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * Reading ahead: the pages a set of records needs are made resident asynchronously and held, so
 * reading those records afterwards reads nothing synchronously and gives what a reader with the
 * whole index in its cache gives; the bytes held are bounded by prefetch_bytes.
 */
describe('index prefetch', () => {
  let big: IndexReader;
  let records: RecordRef[];
  beforeAll(() => {
    big = IndexReader.open(inject('sampleIndex'));
    const next = rng(7);
    const shards = big.manifest.shards;
    records = Array.from({ length: 60 }, () => {
      const shard = Math.floor(next() * shards.length);
      return { shard, row: Math.floor(next() * shards[shard]!.records) };
    });
  });
  afterAll(() => big.close());

  /** What building a batch reads of a record: its row, spans, tokens, uuid and answer text. */
  const view = (r: IndexReader, { shard, row }: RecordRef): unknown => {
    const f = r.row(shard, row);
    const len = f[ROW.INSTR_LEN]! + f[ROW.INPUT_LEN]! + f[ROW.OUTPUT_LEN]!;
    const tokens = new Int32Array(len);
    r.readTokens(shard, f[ROW.TOK_START]!, len, tokens, 0);
    return {
      row: Array.from(f),
      spans: Array.from(r.spans(shard, f[ROW.SPAN_START]!, f[ROW.SPAN_COUNT]!)),
      uuid: r.uuid(shard, row),
      out: r.string(shard, f[ROW.OUT_TEXT_OFF]!, f[ROW.OUT_TEXT_LEN]!),
      tokens: Buffer.from(tokens.buffer).toString('base64'),
    };
  };

  it('held pages serve every read of the records with no synchronous read, byte for byte, with a cache far too small to hold them', async () => {
    // A cache of two token pages: without the held pages nearly every read below would miss.
    const r = IndexReader.open(inject('sampleIndex'), {
      cacheBytes: 2 * 4 * PAGE_TOKENS,
      readAhead: { prefetchBytes: 64 << 20, readConcurrency: 4 },
    });
    try {
      const held = await r.residentFor(records, true);
      expect(held.read).toBeGreaterThan(records.length);
      expect(r.cacheStats.misses).toBe(0);
      for (const rec of records) expect(view(r, rec)).toEqual(view(big, rec));
      expect(r.cacheStats.misses).toBe(0);
      expect(r.cacheStats.prefetched).toBe(held.read);
      expect(r.prefetchHeld).toBe(held.bytes);
      held.release();
      expect(r.prefetchHeld).toBe(0);
      // Released pages are no longer held: the tiny cache reads them again.
      for (const rec of records) expect(view(r, rec)).toEqual(view(big, rec));
      expect(r.cacheStats.misses).toBeGreaterThan(0);
    } finally {
      r.close();
    }
  });

  it('a page asked for by two steps at once is read once and stays held until both release', async () => {
    const r = IndexReader.open(inject('sampleIndex'), {
      cacheBytes: 1,
      readAhead: { prefetchBytes: 64 << 20, readConcurrency: 2 },
    });
    try {
      const page = {
        shard: records[0]!.shard,
        section: 'rows' as const,
        page: Math.floor(records[0]!.row / ROWS_PER_PAGE),
      };
      const [a, b] = await Promise.all([r.prefetch([page]), r.prefetch([page, page])]);
      expect(r.cacheStats.prefetched).toBe(1);
      const bytes = r.prefetchHeld;
      expect(bytes).toBeGreaterThan(0);
      a.release();
      expect(r.prefetchHeld).toBe(bytes);
      expect(view(r, records[0]!)).toBeDefined();
      b.release();
      expect(r.prefetchHeld).toBe(0);
    } finally {
      r.close();
    }
  });

  it('bytes held never exceed prefetch_bytes: a step waits until earlier ones release', async () => {
    const limit = 3 * 4 * PAGE_TOKENS;
    const r = IndexReader.open(inject('sampleIndex'), {
      cacheBytes: 1,
      readAhead: { prefetchBytes: limit, readConcurrency: 4 },
    });
    try {
      const shard = big.manifest.shards.findIndex((s) => s.tokens > 8 * PAGE_TOKENS);
      const pages = (from: number) => [0, 1].map((k) => ({ shard, section: 'tokens' as const, page: from + k }));
      const first = await r.prefetch(pages(0));
      let second: Awaited<ReturnType<IndexReader['prefetch']>> | undefined;
      const waiting = r.prefetch(pages(2)).then((h) => (second = h));
      // Let every read that could start start: the second step must still be waiting for room.
      for (let k = 0; k < 20; k++) await new Promise((go) => setImmediate(go));
      expect(second).toBeUndefined();
      expect(r.prefetchHeld).toBeLessThanOrEqual(limit);
      first.release();
      await waiting;
      expect(second).toBeDefined();
      expect(r.prefetchHeld).toBeLessThanOrEqual(limit);
      // A step larger than the whole budget still runs, alone.
      second!.release();
      const huge = await r.prefetch([0, 1, 2, 3, 4].map((p) => ({ shard, section: 'tokens' as const, page: p })));
      expect(huge.bytes).toBeGreaterThan(limit);
      huge.release();
      expect(r.prefetchHeld).toBe(0);
    } finally {
      r.close();
    }
  });
  it("planning's read-ahead holds at most its share of prefetch_bytes, never waits, and a batch's share is its own", async () => {
    const page = 4 * PAGE_TOKENS;
    // Planning's share: a quarter (2 token pages); a batch's: the rest (6).
    const r = IndexReader.open(inject('sampleIndex'), {
      cacheBytes: 1,
      readAhead: { prefetchBytes: 8 * page, readConcurrency: 4 },
    });
    try {
      const shard = big.manifest.shards.findIndex((s) => s.tokens > 8 * PAGE_TOKENS);
      const pages = (from: number, n: number) =>
        Array.from({ length: n }, (_, k) => ({ shard, section: 'tokens' as const, page: from + k }));
      // Five pages asked for: all read, the first two held, the rest only read.
      const ahead = await r.readAhead(pages(0, 5));
      expect(r.cacheStats.prefetched).toBe(5);
      expect(r.prefetchHeld).toBe(2 * page);
      // A page planning missed is held at once; beyond the share only because this cache cannot
      // keep a page at all (planning could not go on else).
      const miss = await r.prefetch(pages(5, 1), 'miss');
      expect(r.prefetchHeld).toBe(3 * page);
      // A batch does not wait on what planning holds: six pages, three of them held already.
      const batch = await r.prefetch(pages(0, 6));
      expect(batch.bytes).toBe(3 * page);
      expect(r.prefetchHeld).toBe(6 * page);
      ahead.release();
      miss.release();
      // Pages the batch still holds stay counted until it releases them.
      expect(r.prefetchHeld).toBe(6 * page);
      batch.release();
      expect(r.prefetchHeld).toBe(0);
    } finally {
      r.close();
    }
  });

  it('pages planning missed never take what is held past prefetch_bytes: beyond its share they are read into the cache only', async () => {
    const page = 4 * PAGE_TOKENS;
    const limit = 8 * page;
    // Planning's share: 2 token pages; the cache holds the whole shard.
    const r = IndexReader.open(inject('sampleIndex'), {
      cacheBytes: 64 << 20,
      readAhead: { prefetchBytes: limit, readConcurrency: 4 },
    });
    try {
      const shard = big.manifest.shards.findIndex((s) => s.tokens > 13 * PAGE_TOKENS);
      expect(shard).toBeGreaterThanOrEqual(0);
      const ref = (p: number) => ({ shard, section: 'tokens' as const, page: p });
      const ahead = await r.readAhead([ref(0), ref(1)]);
      expect(r.prefetchHeld).toBe(2 * page);
      // A batch holding its share, then four misses, one at a time (as planning meets them).
      const batch = await r.prefetch([2, 3, 4, 5, 6, 7].map(ref));
      expect(r.prefetchHeld).toBe(limit);
      const misses = [];
      for (let p = 8; p < 12; p++) {
        misses.push(await r.prefetch([ref(p)], 'miss'));
        expect(r.prefetchHeld).toBeLessThanOrEqual(limit);
      }
      // What was missed is resident all the same: planning, run again, finds it without a read.
      const read = r.cacheStats.misses;
      r.strictly(() => {
        for (let p = 8; p < 12; p++) r.tokenView(shard, p * PAGE_TOKENS, 1, new Int32Array(1));
      });
      expect(r.cacheStats.misses).toBe(read);
      for (const m of misses) m.release();
      ahead.release();
      // With room in planning's share again, a miss is held there.
      const held = await r.prefetch([ref(12)], 'miss');
      expect(r.prefetchHeld).toBe(limit - 2 * page + page);
      held.release();
      batch.release();
      expect(r.prefetchHeld).toBe(0);
    } finally {
      r.close();
    }
  });
});
