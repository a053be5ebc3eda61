import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset, type DatasetOptions } from '../../clients/ts/flanstream-client.js';
import type { Batch, StreamSummary } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { spawnServer, sleep, type ChildServer } from './procs.js';

/**
 * Reliability (issue 8.2): three replicas in child processes, one SIGKILLed mid-run. Every rank
 * keeps going on another replica (FlanStreamDataset `targets`); the ranks' batches together are
 * exactly the single-server stream, and an evaluation stream stays exactly-once.
 */
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
/** Everything about a batch's rows (not its step / rank / stats), as one string. */
const rowsKey = (b: Batch): string =>
  [
    b.batchSize,
    b.seqLen,
    b.maxSeqlen,
    hex(new Uint8Array(b.inputIds.buffer, b.inputIds.byteOffset, b.inputIds.byteLength)),
    hex(new Uint8Array(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength)),
    hex(new Uint8Array(b.positionIds.buffer, b.positionIds.byteOffset, b.positionIds.byteLength)),
    hex(new Uint8Array(b.segmentIds.buffer, b.segmentIds.byteOffset, b.segmentIds.byteLength)),
    hex(new Uint8Array(b.cuSeqlens.buffer, b.cuSeqlens.byteOffset, b.cuSeqlens.byteLength)),
    JSON.stringify(b.segments),
  ].join('|');
const retry = { initialBackoffMs: 20, maxBackoffMs: 200, attempts: 20 };

describe('failover across three replicas', () => {
  const index = inject('sampleIndex');
  let reps: ChildServer[] = [];
  let single: TestServer;
  beforeAll(async () => {
    single = await startTestServer(index);
  });
  afterAll(async () => {
    await Promise.all(reps.map((r) => r.kill()));
    await single?.stop();
  });

  /** Runs every rank on `targets` concurrently, `pace` ms per batch; after rank `killRank`'s `killAfter`-th batch, `kill()`. */
  async function runRanks(
    W: number,
    opts: DatasetOptions,
    n: number,
    killRank: number,
    killAfter: number,
    kill: () => Promise<void>,
  ): Promise<{ batches: Batch[][]; targets: string[][]; summaries: unknown[] }> {
    const targets = reps.map((r) => r.target);
    let killed: Promise<void> | undefined;
    const out = await Promise.all(
      Array.from({ length: W }, async (_, rank) => {
        const ds = new FlanStreamDataset(targets, { ...opts, rank, worldSize: W, retry, prefetch: 2 });
        const got: Batch[] = [];
        const used = [ds.target];
        for await (const b of ds) {
          got.push(b);
          if (used.at(-1) !== ds.target) used.push(ds.target);
          if (rank === killRank && got.length === killAfter) killed = kill();
          if (got.length === n) break;
          await sleep(15);
        }
        const summary = ds.summary;
        ds.close();
        return { got, used, summary };
      }),
    );
    await killed;
    return { batches: out.map((o) => o.got), targets: out.map((o) => o.used), summaries: out.map((o) => o.summary) };
  }

  it("train W=3 and W=2: the killed replica's rank moves on, the ranks together equal the W=1 stream", async () => {
    reps = await Promise.all([0, 1, 2].map(() => spawnServer(index)));
    const B = 2;
    // grpc-js reads up to 16 messages ahead of the client's own prefetch, so a rank can finish
    // on batches the killed replica already sent; N leaves far more than that after the kill.
    const N = 48;
    const spec = { split: 'train' as const, batchSize: B, seqLen: 2048, packing: 'packed' as const, seed: 41 };
    // Reference: the W=1 stream on a single in-process server; rank r's step s = W=1 batch s·W + r.
    const refDs = new FlanStreamDataset(single.target, { ...spec, maxBatches: 3 * N });
    const ref: string[] = [];
    for await (const b of refDs) ref.push(rowsKey(b));
    refDs.close();
    expect(ref).toHaveLength(3 * N);

    let compared = 0;
    for (const [W, victim] of [
      [3, 0],
      [2, 1],
    ] as const) {
      if (W === 2) reps[0] = await spawnServer(index); // replace the replica killed in the W=3 round
      const rep = reps[victim]!;
      const { batches, targets } = await runRanks(W, spec, N, victim, 4, () => rep.kill());
      // The victim's rank started on the killed replica and finished on another one.
      expect(targets[victim]![0]).toBe(rep.target);
      expect(targets[victim]!.at(-1)).not.toBe(rep.target);
      for (let r = 0; r < W; r++) {
        expect(
          batches[r]!.map((b) => [b.step, b.rank, b.worldSize]),
          `W=${W} rank ${r}`,
        ).toEqual(Array.from({ length: N }, (_, s) => [s, r, W]));
        batches[r]!.forEach((b, s) => expect(rowsKey(b), `W=${W} rank ${r} step ${s}`).toBe(ref[s * W + r]));
        compared += N;
      }
      console.log(
        `failover train W=${W}: killed ${rep.target} after rank ${victim}'s 4th batch; rank targets ${JSON.stringify(targets)}; ${W * N} batches compared`,
      );
    }
    expect(compared).toBe(5 * N);
  });

  it('an evaluation stream (test, W=3) stays exactly-once across the failover', async () => {
    // Replace the replicas killed earlier (or start all three when run alone).
    if (reps.length < 3) reps = await Promise.all([0, 1, 2].map(() => spawnServer(index)));
    else
      reps = await Promise.all(
        reps.map((r) =>
          r.child.exitCode === null && r.child.signalCode === null ? Promise.resolve(r) : spawnServer(index),
        ),
      );
    const spec = { split: 'test' as const, batchSize: 2, seqLen: 4096, packing: 'none' as const };
    const refDs = new FlanStreamDataset(single.target, spec);
    const refUuids: string[] = [];
    for await (const b of refDs) refUuids.push(...b.segments.flatMap((s) => s.uuids));
    const refSummary = refDs.summary;
    refDs.close();
    expect(refUuids.length).toBeGreaterThan(30);
    expect(new Set(refUuids).size).toBe(refUuids.length);

    const rep = reps[0]!;
    const { batches, targets, summaries } = await runRanks(3, spec, Infinity, 0, 2, () => rep.kill());
    expect(targets[0]!.at(-1)).not.toBe(rep.target);
    const uuids = batches.flatMap((bs) => bs.flatMap((b) => b.segments.flatMap((s) => s.uuids)));
    // Exactly once: no duplicates, nothing missing, and per rank consecutive steps.
    expect(uuids.length).toBe(refUuids.length);
    expect([...uuids].sort()).toEqual([...refUuids].sort());
    batches.forEach((bs, r) =>
      expect(
        bs.map((b) => b.step),
        `rank ${r}`,
      ).toEqual(bs.map((_, s) => s)),
    );
    // Each rank's final message: its own per-task counts, and the global totals of the W=1 run.
    const sums = summaries as (StreamSummary | null)[];
    const perTask: Record<string, number> = {};
    for (const s of sums) {
      expect(s?.reason).toBe('complete');
      expect([s!.totalExamples, s!.totalTaskExamples]).toEqual([
        refSummary!.totalExamples,
        refSummary!.totalTaskExamples,
      ]);
      for (const [t, n] of Object.entries(s!.taskExamples)) perTask[t] = (perTask[t] ?? 0) + n;
    }
    expect(sums.reduce((a, s) => a + s!.examples, 0)).toBe(refSummary!.examples);
    expect(Object.fromEntries(Object.entries(perTask).filter(([, n]) => n > 0))).toEqual(
      Object.fromEntries(Object.entries(refSummary!.taskExamples).filter(([, n]) => n > 0)),
    );
    console.log(
      `failover eval test W=3: ${uuids.length} examples exactly once across ${batches.map((b) => b.length).join('+')} batches; rank targets ${JSON.stringify(targets)}`,
    );
  });
});
