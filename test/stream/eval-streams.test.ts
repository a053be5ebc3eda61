import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset } from '../../clients/ts/flanstream-client.js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { CorpusInfo } from '../../clients/ts/wire-types.js';
import { ROW, SPLIT_BIT } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { collect, type Collected } from '../helpers/grpc-stream-calls.js';
import { uuidsOf } from '../helpers/batch-digests.js';

/** Evaluation streams are finite: every example exactly once across ranks, then matching final counts. */
describe('evaluation streams', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  let reader: IndexReader;
  let info: CorpusInfo;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
    reader = IndexReader.open(inject('sampleIndex'));
    info = await client.corpusInfo();
  });
  afterAll(async () => {
    reader?.close();
    client?.close();
    await ts?.stop();
  });

  /** uuid → task path of the records an evaluation split holds, read from the shard tables. */
  function expected(split: 'dev' | 'test' | 'heldout', heldoutSet: string): Map<string, string> {
    const held = new Set(info.heldoutSets.find((h) => h.name === heldoutSet)!.tasks);
    const out = new Map<string, string>();
    reader.manifest.shards.forEach((s, i) => {
      for (let r = 0; r < s.records; r++) {
        const row = reader.row(i, r);
        const path = s.tasks[row[ROW.TASK]!]!.path;
        const bits = row[ROW.SPLITS]!;
        const take = split === 'heldout' ? held.has(path) : !held.has(path) && (bits & SPLIT_BIT[split]) !== 0;
        if (take) out.set(reader.uuid(i, r), path);
      }
    });
    return out;
  }

  const grid = [
    { split: 'test', packing: 'none', heldout: 'unseen-flag', W: 3, B: 4 },
    { split: 'test', packing: 'packed', heldout: 'unseen-flag', W: 3, B: 2 },
    { split: 'test', packing: 'examples', heldout: 'unseen-flag', W: 3, B: 5 },
    { split: 'dev', packing: 'packed', heldout: 'none', W: 2, B: 3 },
    { split: 'heldout', packing: 'none', heldout: 'loco-speech-caption', W: 4, B: 1 },
    { split: 'heldout', packing: 'packed', heldout: 'music-reasoning', W: 8, B: 1 },
  ] as const;

  for (const g of grid) {
    it(`serves every ${g.split} example exactly once across ${g.W} ranks (${g.packing}, held-out ${g.heldout})`, async () => {
      const want = expected(g.split, g.heldout);
      expect(want.size).toBeGreaterThan(0);
      const spec = {
        split: g.split,
        batchSize: g.B,
        seqLen: 4096,
        packing: g.packing,
        heldout: { name: g.heldout },
        worldSize: g.W,
      };
      const ranks: Collected[] = await Promise.all(
        Array.from({ length: g.W }, (_, rank) => collect(client, [{ spec: { ...spec, rank } }])),
      );
      const seen = new Map<string, number>();
      const totals = info.tasks.map(() => 0);
      for (const [t, path] of info.tasks.map((t) => [t.index, t.path] as const))
        totals[t] = [...want.values()].filter((p) => p === path).length;
      ranks.forEach((r, rank) => {
        expect(r.error, `rank ${rank}`).toBeUndefined();
        expect(r.end?.reason, `rank ${rank}`).toBe('complete');
        const mine = info.tasks.map(() => 0);
        r.batches.forEach((b, s) => {
          expect([b.step, b.rank, b.worldSize], `rank ${rank}`).toEqual([s, rank, g.W]);
          for (const u of uuidsOf(b)) {
            expect(seen.get(u), `uuid ${u} on ranks ${seen.get(u)} and ${rank}`).toBeUndefined();
            seen.set(u, rank);
            const path = want.get(u);
            expect(path, `uuid ${u} does not belong to this evaluation set`).toBeDefined();
            mine[info.tasks.find((t) => t.path === path)!.index]!++;
          }
        });
        expect(r.end!.taskExamples, `rank ${rank} per-task counts`).toEqual(mine);
        expect(r.end!.examples).toBe(mine.reduce((a, b) => a + b, 0));
        expect(r.end!.totalTaskExamples, `rank ${rank} totals`).toEqual(totals);
        expect(r.end!.totalExamples).toBe(want.size);
      });
      expect(new Set(seen.keys())).toEqual(new Set(want.keys()));
    });
  }

  it('counts over-long examples as dropped and serves all the others once (seq_len 1024, packed)', async () => {
    const want = expected('test', 'unseen-flag');
    const ranks = await Promise.all(
      [0, 1, 2].map((rank) =>
        collect(client, [
          { spec: { split: 'test', batchSize: 2, seqLen: 1024, packing: 'packed', worldSize: 3, rank } },
        ]),
      ),
    );
    const got = ranks.flatMap((r) => r.batches.flatMap(uuidsOf));
    expect(new Set(got).size).toBe(got.length);
    const dropped = ranks.map((r) => r.batches.at(-1)!.stats!.dropped);
    const lastStep = Math.max(...ranks.map((r) => r.batches.length)) - 1;
    const final = ranks.find((r) => r.batches.length === lastStep + 1)!.batches.at(-1)!.stats!.dropped;
    expect(final).toBeGreaterThan(0);
    expect(Math.max(...dropped)).toBe(final);
    expect(got.length + final).toBe(want.size);
    expect(ranks.reduce((n, r) => n + r.end!.examples, 0)).toBe(got.length);
  });

  it('the TypeScript dataset reports the final counts in `summary`, and a new loop starts over', async () => {
    const sets = [0, 1, 2].map(
      (rank) =>
        new FlanStreamDataset(ts.target, {
          split: 'test',
          batchSize: 4,
          seqLen: 4096,
          packing: 'none',
          rank,
          worldSize: 3,
        }),
    );
    const seen: string[] = [];
    for (const ds of sets) for await (const b of ds) seen.push(...b.segments.flatMap((s) => s.uuids));
    const want = expected('test', 'unseen-flag');
    expect(new Set(seen)).toEqual(new Set(want.keys()));
    expect(seen).toHaveLength(want.size);
    for (const ds of sets) {
      expect(ds.summary?.reason).toBe('complete');
      expect(ds.summary?.totalExamples).toBe(want.size);
      expect(Object.values(ds.summary!.totalTaskExamples).reduce((a, b) => a + b, 0)).toBe(want.size);
    }
    expect(sets.reduce((n, ds) => n + ds.summary!.examples, 0)).toBe(want.size);
    const again: string[] = [];
    for await (const b of sets[1]!) again.push(...b.segments.flatMap((s) => s.uuids));
    expect(again).toHaveLength(sets[1]!.summary!.examples);
    for (const ds of sets) ds.close();
  });
});
