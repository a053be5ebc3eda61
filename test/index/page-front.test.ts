import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PAGE_TOKENS } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';

/**
 * ShardPages' direct-mapped front of its LRU: repeated lookups skip the LRU, yet the front never
 * serves a page the LRU has evicted (the cache's byte bound holds) nor keeps one the LRU would not
 * hold at all, and every read gives the tokens a large cache gives.
 */
describe('shard page front cache', () => {
  let big: IndexReader;
  let shard: number;
  beforeAll(() => {
    big = IndexReader.open(inject('sampleIndex'));
    shard = big.manifest.shards.findIndex((s) => s.tokens > 6 * PAGE_TOKENS);
  });
  afterAll(() => big.close());

  const tokens = (r: IndexReader, page: number): number[] => {
    const out = new Int32Array(40);
    r.readTokens(shard, page * PAGE_TOKENS + 7, out.length, out, 0);
    return Array.from(out);
  };

  it('a page evicted from the LRU is read again, not served from the front; a kept one is a hit', () => {
    expect(shard).toBeGreaterThanOrEqual(0);
    // Room for 4 token pages: pages 0-5 in turn evict page 0 (the page table is small and recent).
    const r = IndexReader.open(inject('sampleIndex'), { cacheBytes: 4 * 4 * PAGE_TOKENS });
    try {
      expect(tokens(r, 0)).toEqual(tokens(big, 0));
      const first = { ...r.cacheStats };
      expect(tokens(r, 0)).toEqual(tokens(big, 0));
      expect(r.cacheStats.misses).toBe(first.misses);
      expect(r.cacheStats.hits).toBe(first.hits + 1);
      for (let p = 1; p <= 5; p++) expect(tokens(r, p)).toEqual(tokens(big, p));
      const before = r.cacheStats.misses;
      expect(tokens(r, 0)).toEqual(tokens(big, 0));
      expect(r.cacheStats.misses).toBe(before + 1);
      // The most recent page is still held: a hit.
      const hits = r.cacheStats.hits;
      expect(tokens(r, 0)).toEqual(tokens(big, 0));
      expect(r.cacheStats.hits).toBe(hits + 1);
    } finally {
      r.close();
    }
  });

  it('with a cache smaller than one page every read is a miss and still correct', () => {
    const r = IndexReader.open(inject('sampleIndex'), { cacheBytes: 1024 });
    try {
      tokens(r, 1);
      const before = r.cacheStats.misses;
      for (let k = 0; k < 3; k++) expect(tokens(r, 1)).toEqual(tokens(big, 1));
      expect(r.cacheStats.misses).toBeGreaterThanOrEqual(before + 3);
    } finally {
      r.close();
    }
  });
});
