import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf, resumeFrom } from '../helpers/grpc-stream-calls.js';
import { rowsOf } from '../helpers/batch-digests.js';

/**
 * Partitioning: the global row sequence does not depend on world size. Global step s at world
 * size W is rows [s·W·B, (s+1)·W·B); rank r gets rows [s·W·B + r·B, s·W·B + (r+1)·B).
 */
describe('ranks and elastic world size', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
  });

  const B = 2;
  const STEPS = 4;
  const base = (packing: string): object => ({ split: 'train', batchSize: B, seqLen: 2048, packing, seed: 3 });
  const ranksOf = (spec: object, W: number, n: number): Promise<WireBatch[][]> =>
    Promise.all(Array.from({ length: W }, (_, r) => batchesOf(client, { ...spec, rank: r, worldSize: W }, n)));

  /** Checks every rank's batches against the W=1 rows; returns, per step, uuids served by more than one rank. */
  async function checkPartition(packing: string): Promise<string[]> {
    const ref = await batchesOf(client, base(packing), 8 * STEPS);
    const refRows = ref.flatMap(rowsOf);
    const shared: string[] = [];
    for (const W of [1, 2, 3, 8]) {
      const ranks = await ranksOf(base(packing), W, STEPS);
      for (let s = 0; s < STEPS; s++) {
        const seen = new Map<string, number>();
        for (let r = 0; r < W; r++) {
          const b = ranks[r]![s]!;
          const at = `W=${W} step ${s} rank ${r}`;
          expect([b.step, b.rank, b.worldSize, b.batchSize], at).toEqual([s, r, W, B]);
          expect(rowsOf(b), at).toEqual(refRows.slice(s * W * B + r * B, s * W * B + (r + 1) * B));
          // Stats are global totals: after step s, all W·B·(s+1) rows of the W=1 stream.
          expect(b.stats, at).toEqual(ref[(s + 1) * W - 1]!.stats);
          for (const u of new Set(b.uuids)) {
            if (seen.has(u)) shared.push(`${at}: uuid ${u} also on rank ${seen.get(u)}`);
            seen.set(u, r);
          }
        }
      }
    }
    return shared;
  }

  for (const packing of ['none', 'packed']) {
    it(`W ∈ {1, 2, 3, 8} together equal the W=1 stream row for row, disjoint uuids (${packing})`, async () => {
      expect(await checkPartition(packing)).toEqual([]);
    });
  }

  // Row positions are still disjoint; uuids are not checked here because a later turn of a
  // conversation is chosen by its clip, outside its task's permutation, and may recur (docs/service.md).
  it('W ∈ {1, 2, 3, 8} together equal the W=1 stream row for row (multiturn)', async () => {
    await checkPartition('multiturn');
  });

  it('a token saved at W=4 resumes at W′ ∈ {1, 2, 3, 8} at the same global position', async () => {
    const ref = await batchesOf(client, base('packed'), 40);
    const refRows = ref.flatMap(rowsOf);
    const ranks = await ranksOf(base('packed'), 4, 3);
    const s = 2;
    const at = (s + 1) * 4 * B; // rows before the resumed position
    for (const W2 of [1, 2, 3, 8]) {
      for (let r = 0; r < W2; r++) {
        const k = 3;
        const next = await resumeFrom(client, ranks[0]![s]!.resumeToken, k, { rank: r, worldSize: W2 });
        expect(
          next.map((b) => [b.step, b.rank, b.worldSize]),
          `W'=${W2} rank ${r}`,
        ).toEqual(Array.from({ length: k }, (_, i) => [s + 1 + i, r, W2]));
        next.forEach((b, i) =>
          expect(rowsOf(b), `W'=${W2} rank ${r} batch ${i}`).toEqual(
            refRows.slice(at + i * W2 * B + r * B, at + i * W2 * B + (r + 1) * B),
          ),
        );
      }
    }
  });

  it('the tokens of all ranks at one step resume identically', async () => {
    const ranks = await ranksOf(base('packed'), 3, 2);
    const from = await Promise.all(
      ranks.map((rs) => resumeFrom(client, rs[1]!.resumeToken, 2, { rank: 1, worldSize: 2 })),
    );
    for (const f of from.slice(1)) expect(f.map(rowsOf)).toEqual(from[0]!.map(rowsOf));
  });

  it('without world_size in Resume the token keeps its world size', async () => {
    const ranks = await ranksOf(base('packed'), 2, 3);
    const next = await resumeFrom(client, ranks[0]![0]!.resumeToken, 2, { rank: 1 });
    expect(next.map((b) => [b.step, b.worldSize])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(next.map(rowsOf)).toEqual(ranks[1]!.slice(1).map(rowsOf));
  });

  const musicOnlyAfterUpdate = async (packing: string): Promise<void> => {
    const updates = [{ weights: { music: 1 }, applyAtStep: 2 }];
    const spec = { split: 'train', seqLen: 2048, packing, seed: 8 };
    const ref = await batchesOf(client, { ...spec, batchSize: 2 * B }, 5, updates);
    const ranks = await Promise.all(
      [0, 1].map((r) => batchesOf(client, { ...spec, batchSize: B, rank: r, worldSize: 2 }, 5, updates)),
    );
    for (let s = 0; s < 5; s++) {
      expect([...rowsOf(ranks[0]![s]!), ...rowsOf(ranks[1]![s]!)], `step ${s}`).toEqual(rowsOf(ref[s]!));
      const domains = new Set(ranks.flatMap((rs) => rs[s]!.segDomain));
      if (s >= 2) expect(domains, `step ${s}: music only`).toEqual(new Set([1]));
    }
  };

  it('ranks sending the same mixture update together equal one stream of W·B rows per step with it (none)', () =>
    musicOnlyAfterUpdate('none'));

  // Known bug (reported to the lead): with packing, units drawn into the packing window under the
  // old weights are still served after apply_at_step. Turn into a plain `it` once fixed.
  it('a mixture update applies exactly at apply_at_step with packing (packed)', () => musicOnlyAfterUpdate('packed'));
});
