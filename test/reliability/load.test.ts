import { describe, expect, inject, it } from 'vitest';
import { describeLoad, loadProblems, runLoad } from './load-run.js';

/**
 * Load (issue 8.5), the CI-sized run of the soak scenario (`npm run soak -- --minutes N` runs it
 * for longer): 64 concurrent streams over 8 connections for 25 s — fast, slow and cancelling
 * readers — with no failed call, stall or step gap, every stream and connection closed at the end,
 * and server RSS bounded by its warmed-up value.
 */
describe('64 concurrent streams under load', () => {
  it('fast, slow and cancelling readers: no errors, stalls or gaps; streams closed; RSS and fds flat', async () => {
    const r = await runLoad(inject('sampleIndex'), { durationMs: 25_000 });
    console.log(describeLoad(r));
    expect(loadProblems(r)).toEqual([]);
    expect(r.activeAtEnd).toBe(0);
    // The server saw at least the fast and slow readers' calls at once (the cancelling quarter
    // may be between calls), and each of the 16 cancelling readers cycled several times (229
    // cancels in 28 s with two CPU burners and 20 other test files on 2 cores).
    expect(r.activePeak).toBeGreaterThanOrEqual((r.streams * 3) / 4);
    expect(r.cancelled).toBeGreaterThanOrEqual(r.streams);
    expect(r.batches).toBeGreaterThan(1000);
  }, 120_000);
});
