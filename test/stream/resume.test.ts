import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf, collect, resumeFrom } from '../helpers/grpc-stream-calls.js';
import { digests as digestsOf } from '../helpers/batch-digests.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * Exact resume: for 20 random points of a stream, the batches before the point followed by the
 * batches of a new stream resumed from the token at the point equal the uninterrupted stream,
 * byte for byte (tokens, segment columns, loss spans, stats and the resume tokens themselves).
 */
/**
 * Batches as served content: the first batch of every evaluation call also says which items of
 * the set fit no row (taskDropped, droppedFitSeqLen), a figure about the set that a resumed call
 * repeats, so it is left out (as in stream-digest.test.ts); everything served is compared.
 */
const digests = (batches: Parameters<typeof digestsOf>[0]): string[] =>
  digestsOf(batches.map((b) => ({ ...b, taskDropped: [], droppedFitSeqLen: 0 })));

describe('exact resume', () => {
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

  const POINTS = 20;
  const cases: { name: string; spec: object; n: number; updates?: object[]; placement?: { rank: number } }[] = [
    {
      name: 'train packed, a mixture update pending at step 12',
      spec: { split: 'train', batchSize: 4, seqLen: 2048, packing: 'packed', seed: 5 },
      n: 40,
      updates: [{ weights: { speech: 1, music: 2, audio: 1 }, applyAtStep: 12 }],
    },
    {
      name: 'train none, temperature mixture',
      spec: {
        split: 'train',
        batchSize: 4,
        seqLen: 2048,
        packing: 'none',
        seed: 9,
        mixture: { name: 'temperature-3' },
      },
      n: 40,
    },
    {
      name: 'train multiturn',
      spec: { split: 'train', batchSize: 2, seqLen: 4096, packing: 'multiturn', seed: 2 },
      n: 40,
    },
    {
      name: 'train packed, rank 1 of 3',
      spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: 'packed', seed: 11, rank: 1, worldSize: 3 },
      n: 40,
      placement: { rank: 1 },
    },
    {
      name: 'test split packed (finite)',
      spec: { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed' },
      n: 0,
    },
    {
      name: 'heldout split, examples',
      spec: { split: 'heldout', batchSize: 3, seqLen: 2048, packing: 'examples', heldout: { name: 'music-reasoning' } },
      n: 0,
    },
  ];

  for (const c of cases) {
    it(`resumes exactly at ${POINTS} random points: ${c.name}`, async () => {
      const full = await collect(client, [{ spec: { ...c.spec, maxBatches: c.n }, updates: c.updates ?? [] }]);
      expect(full.error).toBeUndefined();
      const all = full.batches;
      expect(all.length).toBeGreaterThan(POINTS);
      const want = digests(all);
      const draw = rng(all.length);
      const points = new Set<number>();
      while (points.size < POINTS) points.add(Math.floor(draw() * (all.length - 1)));
      for (const p of [...points].sort((a, b) => a - b)) {
        const rest = await collect(client, [
          { resume: { token: all[p]!.resumeToken, maxBatches: c.n ? c.n - p - 1 : 0, ...c.placement } },
        ]);
        expect(rest.error, `point ${p}`).toBeUndefined();
        expect([...want.slice(0, p + 1), ...digests(rest.batches)], `resumed after batch ${p}`).toEqual(want);
        expect(rest.end, `point ${p}`).toEqual(full.end);
        // Every call of a finite stream opens by saying what of the set fits no row, resumed or not.
        if (c.n === 0 && rest.batches[0]) expect(rest.batches[0].taskDropped).toEqual(all[0]!.taskDropped);
      }
    });
  }

  it('resumes from the token of a StreamEnd (max_batches) and of the last batch alike', async () => {
    const spec = { split: 'train', batchSize: 4, seqLen: 2048, packing: 'packed', seed: 21 };
    const all = await batchesOf(client, spec, 30);
    const head = await collect(client, [{ spec: { ...spec, maxBatches: 12 } }]);
    expect(head.end?.reason).toBe('max_batches');
    expect(Buffer.from(head.end!.resumeToken)).toEqual(Buffer.from(head.batches[11]!.resumeToken));
    expect(digests(await resumeFrom(client, head.end!.resumeToken, 18))).toEqual(digests(all.slice(12)));
  });

  it('re-sends, never skips: resuming twice from one token gives the same batches', async () => {
    const all = await batchesOf(
      client,
      { split: 'train', batchSize: 4, seqLen: 2048, packing: 'multiturn', seed: 4 },
      10,
    );
    const token = all[3]!.resumeToken;
    const a = await resumeFrom(client, token, 6);
    const b = await resumeFrom(client, token, 6);
    expect(digests(a)).toEqual(digests(all.slice(4)));
    expect(digests(b)).toEqual(digests(a));
  });

  it('an evaluation token taken after the last batch ends at once with the same final counts', async () => {
    const full = await collect(client, [{ spec: { split: 'dev', batchSize: 8, seqLen: 4096, packing: 'none' } }]);
    expect(full.end?.reason).toBe('complete');
    const rest = await collect(client, [{ resume: { token: full.batches.at(-1)!.resumeToken } }]);
    expect(rest.batches).toHaveLength(0);
    expect(rest.end).toEqual(full.end);
  });
});
