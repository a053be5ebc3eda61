import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IndexCorruptError } from '../../src/errors.js';
import { PAGE_TOKENS } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';

/**
 * IndexReader.tokenView gives the same tokens as readTokens: a view into the cached page when the
 * range lies in one page (the audio layouts re-arrange clips from it without copying), the caller's
 * buffer when it spans pages, and the same error past the section's end.
 */
describe('IndexReader.tokenView', () => {
  let r: IndexReader;
  beforeAll(() => {
    r = IndexReader.open(inject('sampleIndex'));
  });
  afterAll(() => r.close());

  const copied = (i: number, start: number, len: number): number[] => {
    const out = new Int32Array(len);
    r.readTokens(i, start, len, out, 0);
    return Array.from(out);
  };

  it("is a view of the page inside one page and the given buffer across pages, with readTokens' tokens either way", () => {
    const shard = r.manifest.shards.findIndex((s) => s.tokens > PAGE_TOKENS + 64);
    expect(shard).toBeGreaterThanOrEqual(0);
    const into = new Int32Array(200);
    const inside = r.tokenView(shard, 10, 100, into);
    expect(Array.from(inside)).toEqual(copied(shard, 10, 100));
    expect(inside.buffer).not.toBe(into.buffer);
    const across = r.tokenView(shard, PAGE_TOKENS - 30, 60, into);
    expect(Array.from(across)).toEqual(copied(shard, PAGE_TOKENS - 30, 60));
    expect(across.buffer).toBe(into.buffer);
    expect(across.length).toBe(60);
  });

  it('fails past the tokens section like readTokens', () => {
    const tokens = r.manifest.shards[0]!.tokens;
    expect(() => r.tokenView(0, tokens - 5, 10, new Int32Array(10))).toThrow(IndexCorruptError);
    expect(() => r.readTokens(0, tokens - 5, 10, new Int32Array(10), 0)).toThrow(IndexCorruptError);
  });

  it('fails for rows past the rows section too, never a short view (one range reader for every section)', () => {
    const records = r.manifest.shards[0]!.records;
    expect(r.row(0, records - 1).length).toBeGreaterThan(0);
    expect(() => r.row(0, records)).toThrow(IndexCorruptError);
  });
});
