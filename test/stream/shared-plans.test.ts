import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { TrainPlanner } from '../../src/stream/train-planner.js';
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

  it('ranks arriving while another reads the pages of a step wait for its plan: each step is planned once, reading cold pages', async () => {
    // A cache of a few pages: planning a step misses pages and reads them while other ranks arrive.
    const cold = await openCore(inject('sampleIndex'), {
      'index.cache_bytes': String(256 << 10),
      'index.prefetch_bytes': String(2 << 20),
    });
    try {
      const W = 4;
      const n = 6;
      const spec = trainSpec({ batchSize: 2, seqLen: 2048, seed: 21 });
      const ref = take(core.open({ spec }), n * W).batches;
      const sessions = Array.from({ length: W }, (_, rank) => cold.open({ spec: { ...spec, rank, worldSize: W } }));
      const pause = (): Promise<void> => new Promise((go) => setImmediate(go));
      const got = sessions.map((): WireBatch[] => []);
      let missed = 0;
      // The other ranks arrive while the first reads a page it missed planning the step (or
      // after it, on a step planned without a miss).
      let arrive: (() => void) | undefined;
      // Steps begun (by any rank) while the first rank's missed page is held back.
      let holds = 0;
      let holding = false;
      let begunMeanwhile = 0;
      const beginStep = TrainPlanner.prototype.beginStep;
      TrainPlanner.prototype.beginStep = function (this: TrainPlanner, ...args) {
        if (holding) begunMeanwhile++;
        return beginStep.apply(this, args);
      };
      const reader = cold.catalog.reader;
      const prefetch = reader.prefetch.bind(reader);
      reader.prefetch = (pages, kind) => {
        if (kind !== 'miss') return prefetch(pages, kind);
        missed++;
        const first = arrive;
        arrive = undefined;
        if (!first) return prefetch(pages, kind);
        // The first rank's missed page comes late: the other ranks get to the step meanwhile.
        first();
        holds++;
        holding = true;
        return new Promise<void>((go) => setTimeout(go, 50)).then(() => {
          holding = false;
          return prefetch(pages, kind);
        });
      };
      try {
        for (let s = 0; s < n; s++) {
          const others = new Promise<void>((go) => (arrive = go));
          const first = sessions[0]!.nextAsync(pause).finally(() => arrive?.());
          await others;
          const msgs = await Promise.all([first, ...sessions.slice(1).map((x) => x.nextAsync(pause))]);
          msgs.forEach((m, r) => got[r]!.push((m as { batch: WireBatch }).batch));
        }
      } finally {
        reader.prefetch = prefetch;
        TrainPlanner.prototype.beginStep = beginStep;
      }
      expect(holds, 'steps where the other ranks arrived while the first read a missed page').toBeGreaterThan(0);
      expect(begunMeanwhile, 'steps planned by other ranks meanwhile').toBe(0);
      sessions.forEach((x) => x.close());
      expect(missed, 'planning read pages it missed while other ranks arrived').toBeGreaterThan(0);
      expectSlices(got, ref, W, 2, 'cold pages');
      expect(cold.catalog.plans.counts).toEqual({ hits: (W - 1) * n, misses: n });
    } finally {
      cold.catalog.reader.close();
    }
  });
});
