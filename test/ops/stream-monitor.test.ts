import { describe, expect, it } from 'vitest';
import { Ring, StreamMonitor } from '../../src/server/stream-monitor.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch } from '../../src/stream/wire-types.js';

const session = {
  spec: { split: 'train', packing: 'packed', batchSize: 2, seqLen: 100 },
  placement: { rank: 0, worldSize: 1 },
  policyView: () => undefined,
} as unknown as StreamSession;

function batch(step: number, used: number, domainExamples: number[]): WireBatch {
  return {
    step,
    batchSize: 2,
    seqLen: 100,
    segLength: [used],
    examples: [],
    stats: { domainExamples, domainTarget: [0.5, 0.25, 0.25] },
  } as unknown as WireBatch;
}

/** The status page's per-stream history: bounded, time-sampled, and right about fill and rates. */
describe('stream monitor', () => {
  it('a ring keeps the newest items, oldest first', () => {
    const r = new Ring<number>(3);
    expect(r.toArray()).toEqual([]);
    for (let i = 1; i <= 7; i++) r.push(i);
    expect(r.toArray()).toEqual([5, 6, 7]);
  });

  it('samples at most every interval, aggregating fill and throughput over it', () => {
    let now = 1000;
    const m = new StreamMonitor({ capacity: 4, intervalMs: 500, now: () => now });
    m.open('s1', session);
    expect(m.snapshot()[0]).toMatchObject({ id: 's1', split: 'train', batches: 0, step: null, samples: [] });
    now = 1100;
    m.record('s1', batch(0, 150, [1, 1, 0])); // first batch: sampled at once
    for (let i = 1; i <= 4; i++) {
      now += 100;
      m.record('s1', batch(i, 200, [2 * i, i, i]));
    }
    now += 100; // 600 ms after the first sample: the 5th batch since then closes the interval
    m.record('s1', batch(5, 100, [10, 5, 5]));
    const [v] = m.snapshot();
    expect(v!.batches).toBe(6);
    expect(v!.tokens).toBe(150 + 4 * 200 + 100);
    expect(v!.samples).toHaveLength(2);
    const [a, b] = v!.samples;
    expect(a).toMatchObject({ t: 1100, step: 0, fill: 0.75, tokensPerSecond: 1500, batchesPerSecond: 10 });
    expect(b).toMatchObject({ t: 1600, step: 5, fill: 900 / 1000, tokensPerSecond: 1800, batchesPerSecond: 10 });
    expect(b!.realized).toEqual([0.5, 0.25, 0.25]);
    expect(b!.target).toEqual([0.5, 0.25, 0.25]);
  });

  it('keeps a bounded history per stream and forgets closed streams', () => {
    let now = 0;
    const m = new StreamMonitor({ capacity: 5, intervalMs: 10, now: () => now });
    m.open('a', session);
    m.open('b', session);
    for (let i = 0; i < 100; i++) {
      now += 10;
      m.record('a', batch(i, 100, [1, 0, 0]));
    }
    const a = m.snapshot().find((s) => s.id === 'a')!;
    expect(a.samples.map((s) => s.step)).toEqual([95, 96, 97, 98, 99]);
    m.close('a');
    m.record('a', batch(100, 100, [1, 0, 0]));
    expect(m.snapshot().map((s) => s.id)).toEqual(['b']);
  });
});
