import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toFlanStreamError, type FlanStreamError } from '../../clients/ts/errors.js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch, WireResponse } from '../../clients/ts/wire-types.js';
import type { StatusJson } from '../../src/server/status-page.js';
import type { RawLossReport } from '../../src/stream/loss-report.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { openCore, take } from '../helpers/core-streams.js';
import { digests } from '../helpers/batch-digests.js';
import { collect, type Collected } from '../helpers/grpc-stream-calls.js';
import { scrape, sumOf } from '../ops/helpers/grpc.js';

/**
 * Loss reports over the real gRPC transport: the server holds a policy stream at step s + lag
 * until the report of step s arrives, so however fast it could run ahead, the stream is the one
 * the reports define; a bad report ends the call with INVALID_ARGUMENT naming the problem.
 */
const LAG = 2;
const SPEC = {
  split: 'train',
  batchSize: 2,
  seqLen: 2048,
  packing: 'packed',
  seed: 5,
  mixture: {
    weights: { speech: 0.4, music: 0.3, audio: 0.3 },
    policy: 'excess-loss',
    lagSteps: LAG,
    reference: { speech: 1, music: 1, audio: 1 },
  },
};

describe('closed loop over gRPC', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  let domainOf: string[];
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
    domainOf = ts.server.core.catalog.reader.tasks.map((t) => t.domain);
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
  });

  const lossesOf = (b: WireBatch): RawLossReport['losses'] => {
    const per = new Map<number, number>();
    for (const t of b.turnTask) per.set(t, (per.get(t) ?? 0) + 7);
    return [...per].map(([task, tokens]) => ({ task, tokens, lossSum: tokens * (domainOf[task] === 'audio' ? 6 : 2) }));
  };

  /** A trainer: reads a batch, reports it (`report` may replace or withhold the report), until `n` batches or an error. */
  function train(
    n: number,
    report: (b: WireBatch) => object | undefined = (b) => ({ step: b.step, losses: lossesOf(b) }),
  ): Promise<Collected> {
    return collect(client, [{ spec: SPEC }], n, (b) => {
      const r = report(b);
      return r && { losses: r };
    });
  }

  it('equals the stream the same reports give through the core, byte for byte', async () => {
    const got = await train(16);
    expect(got.error).toBeUndefined();
    const core = await openCore(inject('sampleIndex'));
    const s = core.open({ spec: SPEC });
    const want: WireBatch[] = [];
    for (let k = 0; k < 16; k++) {
      const b = take(s, 1).batches[0]!;
      want.push(b);
      s.addReport(core.lossReport({ step: b.step, losses: lossesOf(b as never) }, s.heldout));
    }
    expect(digests(got.batches)).toEqual(digests(want as never));
    const audio = 2;
    expect(got.batches[15]!.stats!.domainTarget[audio]).toBeGreaterThan(0.6);
  });

  it('waits for the report its next step needs instead of running ahead', async () => {
    const call = client.streamBatches();
    const batches: WireBatch[] = [];
    call.on('data', (resp: WireResponse) => resp.batch && batches.push(resp.batch));
    call.on('error', () => undefined);
    call.write({ spec: SPEC } as never);
    await new Promise((r) => setTimeout(r, 400));
    expect(batches.map((b) => b.step)).toEqual([0, 1]);
    call.write({ losses: { step: 0, losses: lossesOf(batches[0]!) } } as never);
    await new Promise((r) => setTimeout(r, 200));
    expect(batches.map((b) => b.step)).toEqual([0, 1, 2]);
    call.write({ losses: { step: 2, losses: [] } } as never);
    await new Promise((r) => setTimeout(r, 200));
    expect(batches.map((b) => b.step)).toEqual([0, 1, 2, 3, 4]);
    // /metrics and the status page show the policy while the stream is open.
    const m = await scrape(ts.server.httpPort);
    expect(sumOf(m, 'flanstream_policy_weight', { policy: 'excess-loss' })).toBeCloseTo(1, 9);
    expect(sumOf(m, 'flanstream_policy_loss', { selector: 'audio' })).toBeGreaterThan(0);
    const status = (await (await fetch(`http://127.0.0.1:${ts.server.httpPort}/status.json`)).json()) as StatusJson;
    const view = status.streams.find((st) => st.policy)?.policy;
    expect(view?.name).toBe('excess-loss');
    expect(view?.selectors).toEqual(['audio', 'music', 'speech']);
    expect(view?.decisions).toBe(1);
    expect(view?.lastReportStep).toBe(2);
    call.cancel();
  });

  it.each([
    [
      'a NaN loss',
      (b: WireBatch) => ({ step: 1, losses: [{ task: b.turnTask[0], lossSum: NaN, tokens: 3 }] }),
      /losses\.losses\[0\]\.loss_sum.*NaN/,
    ],
    ['an unknown task', () => ({ step: 1, losses: [{ task: 9999, lossSum: 1, tokens: 3 }] }), /unknown task 9999/],
    ['a step not served yet', () => ({ step: 50, losses: [] }), /step 50 has not been served yet/],
  ])('%s ends the call with INVALID_ARGUMENT naming it', async (_, bad, message) => {
    const got = await train(10, (b) => (b.step === 1 ? bad(b) : { step: b.step, losses: lossesOf(b) }));
    expect(got.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(got.error?.details).toMatch(message);
  });

  it('a report on an evaluation stream is refused', async () => {
    const call = client.streamBatches();
    const err = await new Promise<FlanStreamError>((resolve) => {
      call.on('data', (resp: WireResponse) => {
        if (resp.batch?.step === 0) call.write({ losses: { step: 0, losses: [] } } as never);
      });
      call.on('error', (e: unknown) => resolve(toFlanStreamError(e, client.target)));
      call.write({ spec: { split: 'test', batchSize: 1, seqLen: 2048, packing: 'none' } } as never);
    });
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/split "train" only/);
  });

  it('with server.token_key (signed tokens) the status page still reads the policy', async () => {
    const signed = await startTestServer(inject('sampleIndex'), { 'server.token_key': 'k'.repeat(32) });
    const c = new FlanStreamClient(signed.target);
    try {
      const call = c.streamBatches();
      const batches: WireBatch[] = [];
      call.on('data', (resp: WireResponse) => {
        if (!resp.batch) return;
        batches.push(resp.batch);
        call.write({ losses: { step: resp.batch.step, losses: lossesOf(resp.batch) } } as never);
      });
      call.on('error', () => undefined);
      call.write({ spec: SPEC } as never);
      while (batches.length < 5) await new Promise((r) => setTimeout(r, 20));
      const status = (await (
        await fetch(`http://127.0.0.1:${signed.server.httpPort}/status.json`)
      ).json()) as StatusJson;
      expect(status.streams.find((st) => st.policy)?.policy?.decisions).toBeGreaterThan(0);
      call.cancel();
    } finally {
      c.close();
      await signed.stop();
    }
  });
});
