import { describe, expect, inject, it } from 'vitest';
import { digests } from '../helpers/batch-digests.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';

/**
 * The catalog's caches are keyed by what clients choose (inline held-out sets, seq_len): one
 * cache bounded by the bytes its entries hold (stream.catalog_cache_bytes), and an evicted entry
 * made again gives the same stream.
 */
describe('catalog cache bounded by memory', () => {
  it('many inline held-out sets and seq_lens stay within stream.catalog_cache_bytes; evicted ones serve the same stream again', async () => {
    const limit = 128 << 10;
    const core = await openCore(inject('sampleIndex'), { 'stream.catalog_cache_bytes': String(limit) });
    const task = core.catalog.reader.tasks.find((t) => !t.unseen && t.domain === 'speech')!.path;
    const spec = (k: number) =>
      trainSpec({
        batchSize: 2,
        seqLen: 2048 + 64 * k,
        heldout: {
          inline: true,
          selectors: [task],
          excludeOverlappingText: 5 + (k % 8),
          excludeSharedAudio: k % 2 === 0,
        },
      });
    const first = digests(take(core.open({ spec: spec(0) }), 3).batches);
    let peak = 0;
    for (let k = 1; k <= 24; k++) {
      take(core.open({ spec: spec(k) }), 1);
      peak = Math.max(peak, core.catalog.cachedBytes);
    }
    expect(peak).toBeGreaterThan(limit / 2);
    expect(peak).toBeLessThanOrEqual(limit);
    expect(digests(take(core.open({ spec: spec(0) }), 3).batches)).toEqual(first);
    core.catalog.close();
  }, 120_000);
});
