import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { FailedPreconditionError } from '../../src/errors.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawLossReport } from '../../src/stream/loss-report.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { openCore, take, trainSpec, type Spec } from '../helpers/core-streams.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { collect, type Collected } from '../helpers/grpc-stream-calls.js';

/**
 * Ranks of one job must report alike: the first loss report (or mixture update) for a step wins,
 * an equal one from another rank is accepted, a different one is refused with
 * FAILED_PRECONDITION naming the step, the ranks and what differed, and the other ranks go on
 * with the stream the first report defines.
 */
const LAG = 1;
const spec = (rank: number, over: Partial<Spec> = {}): Spec =>
  trainSpec({
    batchSize: 2,
    seqLen: 2048,
    seed: 11,
    rank,
    worldSize: 2,
    mixture: {
      weights: { speech: 0.4, music: 0.3, audio: 0.3 },
      policy: 'excess-loss',
      lagSteps: LAG,
      reference: { speech: 1, music: 1, audio: 1 },
    },
    ...over,
  });

let core: DataServiceCore;
/** One trainable task per domain: the tasks the reports below speak of. */
let reported: { task: number; domain: string }[];
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  const tasks = core.catalog.reader.tasks.filter((t) => !t.unseen);
  reported = ['speech', 'music', 'audio'].map((d) => {
    const t = tasks.find((x) => x.domain === d)!;
    return { task: t.id, domain: d };
  });
});

/**
 * A step's report as every rank sends it after the all-reduce (the same numbers on every rank):
 * 70 tokens per reported task, `audioLoss` per audio token and 2 per other token.
 */
const lossesOf = (step: number, audioLoss = 6): RawLossReport => ({
  step,
  losses: reported.map(({ task, domain }) => ({
    task,
    tokens: 70,
    lossSum: 70 * (domain === 'audio' ? audioLoss : 2),
  })),
});

const report = (s: StreamSession, raw: RawLossReport): void => s.addReport(core.lossReport(raw, s.heldout));
const next = (s: StreamSession): WireBatch => take(s, 1).batches[0]!;

/** Steps 0..n-1 on both ranks, each reporting with `audioLoss(rank, step)`. */
function lockstep(r0: StreamSession, r1: StreamSession, n: number, audioLoss: (rank: number, step: number) => number) {
  const got: WireBatch[][] = [[], []];
  for (let step = 0; step < n; step++) {
    [r0, r1].forEach((s, rank) => {
      const b = next(s);
      got[rank]!.push(b);
      report(s, lossesOf(b.step, audioLoss(rank, step)));
    });
  }
  return got;
}

describe('report agreement between the ranks of one job (core streams)', () => {
  it('an equal report from another rank is accepted; a different one is refused, naming step, ranks and task', () => {
    const [r0, r1] = [core.open({ spec: spec(0) }), core.open({ spec: spec(1) })];
    lockstep(r0, r1, 3, () => 6);
    const b0 = next(r0);
    const b1 = next(r1);
    report(r0, lossesOf(b0.step, 6));
    let err: unknown;
    try {
      report(r1, lossesOf(b1.step, 9));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FailedPreconditionError);
    const msg = (err as Error).message;
    expect(msg).toContain(`loss report for step ${b1.step}`);
    expect(msg).toMatch(/rank 1's .* differs from rank 0's/);
    const audio = core.catalog.reader.tasks[reported[2]!.task]!.path;
    expect(msg).toContain(`${audio}: rank 0 sent loss_sum 420 over 70 tokens, rank 1 sent loss_sum 630 over 70 tokens`);
    expect(msg).not.toMatch(/speech\//); // only what differed is named
    r0.close();
    r1.close();
  });

  it('the other ranks go on with the stream the first report defines', () => {
    const agreeing = lockstep(core.open({ spec: spec(0) }), core.open({ spec: spec(1) }), 6, () => 6);
    const [r0, r1] = [core.open({ spec: spec(0) }), core.open({ spec: spec(1) })];
    // Rank 1 disagrees at step 2: refused; rank 0 goes on alone and gets the agreeing job's batches.
    const got: WireBatch[] = [];
    for (let step = 0; step < 6; step++) {
      const b = next(r0);
      got.push(b);
      report(r0, lossesOf(b.step, 6));
      if (step <= 2) {
        const c = next(r1);
        const send = (): void => report(r1, lossesOf(c.step, step === 2 ? 1 : 6));
        if (step < 2) send();
        else expect(send).toThrow(FailedPreconditionError);
      }
    }
    expect(got.map((b) => b.resumeToken.toString('hex'))).toEqual(
      agreeing[0]!.map((b) => b.resumeToken.toString('hex')),
    );
    r0.close();
    r1.close();
  });

  it('a mixture update for the same step: equal accepted, different refused naming the weights', () => {
    const [r0, r1] = [core.open({ spec: spec(0) }), core.open({ spec: spec(1) })];
    lockstep(r0, r1, 1, () => 6);
    const update = (w: Record<string, number>) => core.update({ applyAtStep: 5, weights: w });
    r0.addUpdate(update({ speech: 0.5, music: 0.25, audio: 0.25 }));
    r1.addUpdate(update({ speech: 0.5, music: 0.25, audio: 0.25 }));
    const [s0, s1] = [core.open({ spec: spec(0, { seed: 12 }) }), core.open({ spec: spec(1, { seed: 12 }) })];
    s0.addUpdate(update({ speech: 0.5, music: 0.25, audio: 0.25 }));
    expect(() => s1.addUpdate(update({ speech: 0.2, music: 0.4, audio: 0.4 }))).toThrow(
      /rank 1's mixture update applying at step 5 differs from rank 0's.*weights\["speech"\]: rank 0 sent 0\.5, rank 1 sent 0\.2/,
    );
    for (const s of [r0, r1, s0, s1]) s.close();
  });

  it('forgets what a closed stream said: a restarted job may report a step anew', () => {
    const [r0, r1] = [core.open({ spec: spec(0, { seed: 13 }) }), core.open({ spec: spec(1, { seed: 13 }) })];
    const b = next(r0);
    next(r1);
    report(r0, lossesOf(b.step, 6));
    r0.close();
    r1.close();
    const before = core.catalog.agreement.size;
    const [q0, q1] = [core.open({ spec: spec(0, { seed: 13 }) }), core.open({ spec: spec(1, { seed: 13 }) })];
    next(q0);
    const c = next(q1);
    report(q1, lossesOf(c.step, 4)); // rank 0's old report is gone with its stream
    q0.close();
    q1.close();
    expect(core.catalog.agreement.size).toBeLessThan(before + 1);
  });

  it('two concurrent jobs of identical settings: a rank that already reported the step starts another account', () => {
    const opts = { seed: 14 };
    const [a0, a1, b0, b1] = [0, 1, 0, 1].map((r) => core.open({ spec: spec(r, opts) }));
    for (const s of [a0, a1, b0, b1]) next(s!);
    report(a0!, lossesOf(0, 6));
    report(b0!, lossesOf(0, 3));
    report(a1!, lossesOf(0, 6));
    report(b1!, lossesOf(0, 3));
    for (const s of [a0, a1, b0, b1]) s!.close();
  });

  it('static streams (no policy) and single-rank streams are not compared', () => {
    const [r0, r1] = [0, 1].map((rank) =>
      core.open({ spec: trainSpec({ batchSize: 2, seqLen: 2048, rank, worldSize: 2 }) }),
    );
    next(r0!);
    next(r1!);
    report(r0!, lossesOf(0, 6));
    report(r1!, lossesOf(0, 1));
    const [s0, s1] = [0, 1].map(() => core.open({ spec: spec(0, { worldSize: 1, seed: 15 }) }));
    next(s0!);
    next(s1!);
    report(s0!, lossesOf(0, 6));
    report(s1!, lossesOf(0, 1));
    for (const s of [r0, r1, s0, s1]) s!.close();
  });
});

describe.each([0, 2])('report agreement over gRPC (serve --workers %i)', (workers) => {
  let ts: TestServer;
  let client: FlanStreamClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.workers': String(workers) });
    client = new FlanStreamClient(ts.target);
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
  });

  /** A rank that reports `audioLoss` per audio token (until `n` batches or an error). */
  function rank(rankId: number, n: number, audioLoss: (step: number) => number): Promise<Collected> {
    return collect(client, [{ spec: spec(rankId, { seed: 21 }) }], n, (b) => ({
      losses: lossesOf(b.step, audioLoss(b.step)),
    }));
  }

  it('two ranks: the one whose report for a step arrives second and differs ends with FAILED_PRECONDITION, the other keeps streaming', async () => {
    const ranks = await Promise.all([rank(0, 8, () => 6), rank(1, 8, (step) => (step >= 3 ? 1 : 6))]);
    // The server takes whichever step-3 report arrives first; the rank whose report arrives second
    // is the one that differs. Both ranks send theirs as soon as they get batch 3, so either may be.
    const refused = ranks.findIndex((r) => r.error !== undefined);
    expect(refused, 'one rank refused').toBeGreaterThanOrEqual(0);
    const kept = 1 - refused;
    expect(ranks[refused]!.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(ranks[refused]!.error?.details).toMatch(
      new RegExp(`rank ${refused}'s loss report for step 3 differs from rank ${kept}'s`),
    );
    expect(ranks[kept]!.error).toBeUndefined();
    expect(ranks[kept]!.batches).toHaveLength(8);
  });
});
