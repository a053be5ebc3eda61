import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset } from '../../clients/ts/flanstream-client.js';
import type { Batch } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { spawnServer, type ChildServer } from './procs.js';

/**
 * Many trainers over several replicas (issue 17, item 6): the ranks of one job given the same
 * `targets` list spread over the replicas by rank (rank r on replica r mod n), and the ranks that
 * share a replica share its planning: each global step is planned once per replica, by whichever
 * of its ranks gets there first, and taken from the plan cache by the others.
 */
const hex = (a: ArrayBufferView): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const rowsKey = (b: Batch): string =>
  [hex(b.inputIds), hex(b.labels), hex(b.segmentIds), JSON.stringify(b.segments)].join('|');

async function gauge(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

describe('8 ranks over 2 replicas', () => {
  const index = inject('sampleIndex');
  let reps: ChildServer[] = [];
  let single: TestServer;
  beforeAll(async () => {
    [single, ...reps] = await Promise.all([startTestServer(index), spawnServer(index), spawnServer(index)]);
  });
  afterAll(async () => {
    await Promise.all(reps.map((r) => r.kill()));
    await single?.stop();
  });

  it('rank r reads from replica r mod 2; each replica plans every step once for its four ranks; together they are the W=1 stream', async () => {
    const W = 8;
    const N = 6;
    const spec = { split: 'train' as const, batchSize: 2, seqLen: 2048, packing: 'packed' as const, seed: 17 };
    const targets = reps.map((r) => r.target);
    const ranks = await Promise.all(
      Array.from({ length: W }, async (_, rank) => {
        const ds = new FlanStreamDataset(targets, { ...spec, rank, worldSize: W, maxBatches: N, prefetch: 2 });
        const got: Batch[] = [];
        const used = new Set<string>();
        for await (const b of ds) {
          got.push(b);
          used.add(ds.target);
        }
        ds.close();
        return { got, used: [...used] };
      }),
    );
    ranks.forEach(({ got, used }, rank) => {
      expect(used, `rank ${rank}`).toEqual([targets[rank % 2]]);
      expect(
        got.map((b) => [b.step, b.rank]),
        `rank ${rank}`,
      ).toEqual(Array.from({ length: N }, (_, s) => [s, rank]));
    });
    for (const rep of reps) {
      // Four ranks per replica: each takes each of the N steps once. The first rank to get to a
      // step plans it; one arriving while it still reads the step's pages (cold pages at the
      // start) waits for that plan, so every step is planned once and taken three times.
      const misses = await gauge(rep.httpPort, 'flanstream_plan_cache_misses_total');
      const hits = await gauge(rep.httpPort, 'flanstream_plan_cache_hits_total');
      expect(misses).toBe(N);
      expect(hits).toBe(3 * N);
    }
    const refDs = new FlanStreamDataset(single.target, { ...spec, maxBatches: W * N });
    const ref: string[] = [];
    for await (const b of refDs) ref.push(rowsKey(b));
    refDs.close();
    ranks.forEach(({ got }, rank) =>
      got.forEach((b, s) => expect(rowsKey(b), `rank ${rank} step ${s}`).toBe(ref[s * W + rank])),
    );
  });
});
