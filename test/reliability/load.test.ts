import { describe, expect, inject, it } from 'vitest';
import { describeLoad, runLoad } from './load-run.js';

/** Reliability (issue 8.4): 64 concurrent mixed streams for ~30 s; the soak variant is soak.ts. */
describe('load', () => {
  it('64 concurrent streams (fast, slow, cancelling) for 30 s: RSS bounded, nothing stalls, everything closes', async () => {
    const r = await runLoad(inject('sampleIndex'), { durationMs: 30_000 });
    console.log(describeLoad(r));
    expect(r.errors).toEqual([]);
    expect(r.stalls).toEqual([]);
    expect(r.gaps).toEqual([]);
    expect(r.activeAtEnd).toBe(0);
    expect(r.activePeak).toBeLessThanOrEqual(64);
    expect(r.activePeak).toBeGreaterThanOrEqual(56);
    expect(r.cancelled).toBeGreaterThan(20);
    // Flat: no more than 160 MB (or 60 %) above the warmed-up RSS at any point.
    expect(r.rssPeak - r.rssWarm).toBeLessThan(Math.max(160 * 2 ** 20, 0.6 * r.rssWarm));
  }, 90_000);
});
