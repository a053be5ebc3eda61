import { describe, expect, inject, it } from 'vitest';
import { describeLoad, loadProblems, runLoad } from './load-run.js';

/**
 * Load, the short functional run of the soak scenario: 64 concurrent streams over 8 connections —
 * fast, slow and cancelling readers — for at least 8 s and until 1,000 batches were read and 64
 * streams cancelled mid-stream (at most 90 s on a busy machine), with no failed call, stall or step
 * gap, every stream and connection closed at the end, and server RSS and fds bounded by their
 * warmed-up values. The same scenario runs for minutes, with idle streams and the token fuzzer
 * alongside, in `npm run soak` (test/reliability/soak.ts), which asserts the same problems list.
 */
describe('64 concurrent streams under load', () => {
  it('fast, slow and cancelling readers: no errors, stalls or gaps; streams closed; RSS and fds flat', async () => {
    const r = await runLoad(inject('sampleIndex'), {
      durationMs: 90_000,
      minMs: 8_000,
      enough: ({ batches, cancelled }) => batches > 1000 && cancelled >= 64,
    });
    console.log(describeLoad(r));
    expect(loadProblems(r)).toEqual([]);
    expect(r.activeAtEnd).toBe(0);
    // The server saw at least the fast and slow readers' calls at once (the cancelling quarter
    // may be between calls), and each of the 16 cancelling readers cycled several times.
    expect(r.activePeak).toBeGreaterThanOrEqual((r.streams * 3) / 4);
    expect(r.cancelled).toBeGreaterThanOrEqual(r.streams);
    expect(r.batches).toBeGreaterThan(1000);
  }, 180_000);
});
