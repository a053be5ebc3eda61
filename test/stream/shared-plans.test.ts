import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { openCore, take, trainSpec, type Spec } from '../helpers/core-streams.js';
import { rowsOf } from '../helpers/batch-digests.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * The rank streams of a job on one server plan each global step once (plan-cache.ts) instead of
 * once per rank. Sharing must be invisible: whatever order the ranks read in, with live updates
 * queued at the same or at different steps, and with ranks falling out of the cache, every rank
 * gets exactly its slice of the W = 1 stream, and all ranks carry the same token for a step.
 */
describe('rank streams share planned steps', () => {
  let core: DataServiceCore;
  beforeAll(async () => {
    core = await openCore(inject('sampleIndex'));
  });

  /** Reads `n` batches per rank, next rank drawn at random, no rank more than `lag` steps ahead. */
  function interleave(
    sessions: StreamSession[],
    n: number,
    seed: number,
    lag: number,
    before?: (rank: number, step: number) => void,
  ): WireBatch[][] {
    const rand = rng(seed);
    const out = sessions.map((): WireBatch[] => []);
    while (out.some((b) => b.length < n)) {
      const slowest = Math.min(...out.map((b) => b.length));
      const ready = out.map((b, r) => r).filter((r) => out[r]!.length < n && out[r]!.length < slowest + lag);
      const r = ready[Math.floor(rand() * ready.length)]!;
      before?.(r, out[r]!.length);
      out[r]!.push(take(sessions[r]!, 1).batches[0]!);
    }
    return out;
  }

  /**
   * Rank r's step s against W = 1 rows [s·W·B + r·B, …); all ranks' tokens for a step equal unless
   * they queued updates at different steps (a token carries its own stream's pending updates).
   */
  function expectSlices(
    ranks: WireBatch[][],
    ref: WireBatch[],
    W: number,
    B: number,
    at: string,
    sameTokens = true,
  ): void {
    const refRows = ref.flatMap(rowsOf);
    ranks.forEach((batches, r) =>
      batches.forEach((b, s) => {
        expect(rowsOf(b), `${at} rank ${r} step ${s}`).toEqual(
          refRows.slice(s * W * B + r * B, s * W * B + (r + 1) * B),
        );
        if (sameTokens)
          expect(Buffer.compare(b.resumeToken, ranks[0]![s]!.resumeToken), `${at} token of step ${s}`).toBe(0);
      }),
    );
  }

  const open = (spec: Spec, W: number): StreamSession[] =>
    Array.from({ length: W }, (_, rank) => core.open({ spec: { ...spec, rank, worldSize: W } }));

  it.each([
    [2, 1, 'packed'],
    [3, 2, 'packed'],
    [8, 3, 'packed'],
    [4, 4, 'multiturn'],
    [3, 5, 'none'],
  ] as const)(
    'W=%i seed %i (%s): ranks read in random order equal the W=1 stream; each step is planned once',
    (W, seed, packing) => {
      const B = 2;
      const n = 6;
      const spec = trainSpec({ batchSize: B, seqLen: 2048, packing, seed });
      const ref = take(core.open({ spec }), n * W).batches;
      const before = { ...core.catalog.plans.counts };
      const ranks = interleave(open(spec, W), n, seed, 3);
      expectSlices(ranks, ref, W, B, `W=${W}`);
      expect(core.catalog.plans.counts.misses - before.misses).toBe(n);
      expect(core.catalog.plans.counts.hits - before.hits).toBe((W - 1) * n);
    },
  );

  it('live updates: queued at the same step the ranks keep sharing; at different steps they diverge and converge, always equal to W=1', () => {
    const W = 4;
    const B = 2;
    const n = 10;
    const apply = 5;
    const spec = trainSpec({ batchSize: B, seqLen: 2048, seed: 9 });
    const refSession = core.open({ spec });
    refSession.addUpdate(core.update({ name: 'balanced-domains', applyAtStep: apply * W }));
    const ref = take(refSession, n * W).batches;

    const update = core.update({ name: 'balanced-domains', applyAtStep: apply });
    let before = { ...core.catalog.plans.counts };
    const same = open(spec, W);
    expectSlices(
      interleave(same, n, 1, 2, (r, s) => s === 2 && same[r]!.addUpdate(update)),
      ref,
      W,
      B,
      'same step',
    );
    expect(core.catalog.plans.counts.hits - before.hits).toBe((W - 1) * n);

    before = { ...core.catalog.plans.counts };
    const apart = open(spec, W);
    expectSlices(
      interleave(apart, n, 2, 2, (r, s) => s === r && apart[r]!.addUpdate(update)),
      ref,
      W,
      B,
      'steps apart',
      false,
    );
    const hits = core.catalog.plans.counts.hits - before.hits;
    // Streams with the update queued at different steps are in different states until it applies.
    expect(hits).toBeLessThan((W - 1) * n);
    expect(hits).toBeGreaterThanOrEqual((W - 1) * (n - apply));
  });

  it('a rank that falls out of the cache restores its planner from its token and plans itself, with the same batches', () => {
    const W = 2;
    const B = 32;
    const n = 300; // 300 steps × 64 rows: more than the cache's 16,384 rows
    const spec = trainSpec({ batchSize: B, seqLen: 1024, packing: 'none', seed: 12 });
    const ref = take(core.open({ spec }), n * W).batches;
    const [lead, late] = open(spec, W);
    const before = { ...core.catalog.plans.counts };
    const first = take(lead!, 20).batches;
    const second = take(late!, 20).batches; // from the cache: its planner is now 20 steps behind
    first.push(...take(lead!, n - 20).batches);
    second.push(...take(late!, n - 20).batches); // evicted: restore, then plan
    expectSlices([first, second], ref, W, B, 'late rank');
    expect(core.catalog.plans.counts.hits - before.hits).toBe(20);
    expect(core.catalog.plans.size.rows).toBeLessThanOrEqual(16_384);
  });
});
