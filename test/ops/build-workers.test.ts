import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toFlanStreamError, type FlanStreamError } from '../../clients/ts/errors.js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch, WireResponse } from '../../clients/ts/wire-types.js';
import { decodeToken, encodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { digests, rowsOf } from '../helpers/batch-digests.js';
import { batchesOf, collect, resumeFrom } from '../helpers/grpc-stream-calls.js';
import { scrape, sumOf } from './helpers/grpc.js';

/**
 * `serve --workers N`: batches built on worker threads must be the very bytes the server thread
 * builds (every packing mode, audio layout, split, loss-report loop), tokens must resume across
 * worker counts, the ranks of a job must land on one worker and share its planned steps, and
 * errors must keep their status.
 */
describe('serve --workers N', () => {
  const servers = new Map<number, { ts: TestServer; client: FlanStreamClient }>();
  const client = (workers: number): FlanStreamClient => servers.get(workers)!.client;
  beforeAll(async () => {
    for (const workers of [0, 1, 2]) {
      const ts = await startTestServer(inject('sampleIndex'), { 'server.workers': String(workers) });
      servers.set(workers, { ts, client: new FlanStreamClient(ts.target) });
    }
  });
  afterAll(async () => {
    for (const { ts, client: c } of servers.values()) {
      c.close();
      await ts.stop();
    }
  });

  const train = (extra: object): object => ({ split: 'train', batchSize: 2, seqLen: 2048, seed: 11, ...extra });
  const SPECS: [string, object][] = [
    ['packed', train({ packing: 'packed' })],
    ['multiturn', train({ packing: 'multiturn' })],
    ['none', train({ packing: 'none' })],
    ['delay, 1 codebook', train({ packing: 'packed', audio: { codebooks: 1, layout: 'delay' } })],
    [
      'flat, 1 codebook, named mixture',
      train({ packing: 'packed', audio: { codebooks: 1, layout: 'flat' }, mixture: { name: 'balanced-domains' } }),
    ],
    ['test split, examples', { split: 'test', batchSize: 4, seqLen: 2048, packing: 'examples' }],
    ['test split, packed', { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed' }],
  ];

  it('every mode, layout and split: the streams of all specs at once through 1 and 2 workers are byte-identical to the server thread', async () => {
    const n = 5;
    const ref = await Promise.all(SPECS.map(([, spec]) => batchesOf(client(0), spec, n)));
    for (const workers of [1, 2]) {
      const got = await Promise.all(SPECS.map(([, spec]) => batchesOf(client(workers), spec, n)));
      SPECS.forEach(([name], k) => {
        expect(got[k]!.length, `${name}, ${workers} workers`).toBe(n);
        expect(digests(got[k]!), `${name}, ${workers} workers`).toEqual(digests(ref[k]!));
      });
    }
  });

  it('a live mixture update queued in the first message and a finite stream end the same way', async () => {
    const updates = [{ name: 'balanced-domains', applyAtStep: 2 }];
    const spec = train({ packing: 'packed', seed: 4 });
    const ref = await collect(client(0), [{ spec: { ...spec, maxBatches: 4 }, updates }]);
    const got = await collect(client(2), [{ spec: { ...spec, maxBatches: 4 }, updates }]);
    expect(digests(got.batches)).toEqual(digests(ref.batches));
    expect(got.end).toEqual(ref.end);
    expect(got.end?.reason).toBe('max_batches');
  });

  it('tokens resume across worker counts: 2 workers → server thread → 1 worker gives the uninterrupted stream', async () => {
    const spec = train({ packing: 'multiturn', seed: 21 });
    const whole = await batchesOf(client(0), spec, 9);
    const a = await batchesOf(client(2), spec, 3);
    const b = await resumeFrom(client(0), a[2]!.resumeToken, 3);
    const c = await resumeFrom(client(1), b[2]!.resumeToken, 3);
    expect(digests([...a, ...b, ...c])).toEqual(digests(whole));
  });

  it('the ranks of a job land on one worker and plan each step once there (plan-cache hits on /metrics)', async () => {
    const W = 4;
    const n = 5;
    const spec = train({ packing: 'packed', seed: 8 });
    const ref = (await batchesOf(client(0), spec, n * W)).flatMap(rowsOf);
    const { ts } = servers.get(2)!;
    const before = await scrape(ts.server.httpPort);
    const ranks = await Promise.all(
      Array.from({ length: W }, (_, rank) => batchesOf(client(2), { ...spec, rank, worldSize: W }, n)),
    );
    ranks.forEach((batches, r) =>
      batches.forEach((b, s) =>
        expect(rowsOf(b), `rank ${r} step ${s}`).toEqual(ref.slice(s * W * 2 + r * 2, s * W * 2 + (r + 1) * 2)),
      ),
    );
    const after = await scrape(ts.server.httpPort);
    const delta = (name: string): number => sumOf(after, name) - sumOf(before, name);
    expect(delta('flanstream_plan_cache_misses_total')).toBe(n);
    expect(delta('flanstream_plan_cache_hits_total')).toBe((W - 1) * n);
  });

  it('a policy stream fed loss reports is the same stream on a worker (reports and waiting cross the thread)', async () => {
    const spec = {
      ...train({ packing: 'packed', seed: 5 }),
      mixture: {
        weights: { speech: 0.4, music: 0.3, audio: 0.3 },
        policy: 'excess-loss',
        lagSteps: 2,
        reference: { speech: 1, music: 1, audio: 1 },
      },
    };
    const loop = (c: FlanStreamClient, n: number): Promise<WireBatch[]> =>
      new Promise((resolve, reject) => {
        const call = c.streamBatches();
        const got: WireBatch[] = [];
        call.on('data', (resp: WireResponse) => {
          if (!resp.batch) return;
          got.push(resp.batch);
          if (got.length >= n) {
            call.cancel();
            return resolve(got);
          }
          const per = new Map<number, number>();
          for (const t of resp.batch.turnTask) per.set(t, (per.get(t) ?? 0) + 5);
          call.write({
            losses: {
              step: resp.batch.step,
              losses: [...per].map(([task, tokens]) => ({ task, tokens, lossSum: tokens * (1 + (task % 3)) })),
            },
          } as never);
        });
        call.on('error', (err: unknown) => (got.length >= n ? undefined : reject(toFlanStreamError(err, c.target))));
        call.write({ spec } as never);
      });
    const ref = await loop(client(0), 8);
    const got = await loop(client(2), 8);
    expect(digests(got)).toEqual(digests(ref));
  });

  it('errors keep their status: a bad spec at once, a bad report and an update on an evaluation stream from the worker', async () => {
    const bad = await collect(client(2), [{ spec: train({ packing: 'packed', batchSize: 0 }) }]);
    expect(bad.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.error?.message).toMatch(/batch_size/);
    const report = await collect(client(2), [
      { spec: train({ packing: 'packed' }) },
      { losses: { step: 0, losses: [{ task: 99999, tokens: 1, lossSum: 1 }] } },
    ]);
    expect(report.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(report.error?.message).toMatch(/unknown task 99999/);
    const update = await collect(client(2), [
      { spec: { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed' } },
      { mixtureUpdate: { name: 'balanced-domains', applyAtStep: 3 } },
    ]);
    expect(update.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(update.error?.message).toMatch(/train/);
  });

  it('a stream is opened once, on the thread that builds it: flanstream_stream_opens grows by one per call', async () => {
    for (const workers of [0, 2]) {
      const { ts } = servers.get(workers)!;
      const opens = async (): Promise<number> => sumOf(await scrape(ts.server.httpPort), 'flanstream_stream_opens');
      const before = await opens();
      const spec = train({ packing: 'packed', seed: 41 });
      const a = await batchesOf(client(workers), spec, 2);
      await Promise.all([0, 1].map((rank) => batchesOf(client(workers), { ...spec, rank, worldSize: 2 }, 2)));
      await resumeFrom(client(workers), a[1]!.resumeToken, 2);
      await batchesOf(client(workers), { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed' }, 1);
      expect((await opens()) - before, `${workers} workers`).toBe(5);
    }
  });

  it('a refused first message gets the status it gets without workers, refused on the server thread or by the worker', async () => {
    const fp = servers.get(0)!.ts.server.core.catalog.reader.fingerprint;
    const [b] = await batchesOf(client(0), train({ packing: 'packed', seed: 43 }), 1);
    const p = decodeToken(Buffer.from(b!.resumeToken), fp) as TokenPayload<{ pool: number[] }>;
    // Decodes and checks as a token; only restoring its planner (opening the session) refuses it.
    const forged = encodeToken({ ...p, state: { ...p.state, pool: [1, 9999, 0] } });
    const evaluation = { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed', maxBatches: 2 };
    const cases: [string, object][] = [
      ['no spec', {}],
      ['batch_size 0', { spec: train({ packing: 'packed', batchSize: 0 }) }],
      ['an unknown mixture', { spec: train({ mixture: { name: 'no-such-mixture' } }) }],
      ['a mixture on an evaluation split', { spec: { ...evaluation, mixture: { name: 'balanced-domains' } } }],
      ['an unknown held-out set', { spec: train({ heldout: { name: 'no-such-set' } }) }],
      ['not a token', { resume: { token: Buffer.from('not a token') } }],
      ['a token whose planner state is out of range', { resume: { token: forged } }],
      [
        'an update on an evaluation stream',
        { spec: evaluation, updates: [{ name: 'balanced-domains', applyAtStep: 1 }] },
      ],
      [
        'a negative update weight',
        { spec: train({ maxBatches: 2 }), updates: [{ weights: { speech: -1 }, applyAtStep: 1 }] },
      ],
    ];
    for (const [name, first] of cases) {
      const [without, withWorkers] = await Promise.all([collect(client(0), [first]), collect(client(2), [first])]);
      expect(without.error?.code, name).toBeDefined();
      expect(without.error?.code, name).not.toBe(Status.INTERNAL);
      expect({ code: withWorkers.error?.code, details: withWorkers.error?.details }, name).toEqual({
        code: without.error?.code,
        details: without.error?.details,
      });
      expect(withWorkers.batches, name).toEqual([]);
    }
  });

  it('shutdown ends a worker-built stream with its token, which resumes exactly', async () => {
    const ts = await startTestServer(inject('sampleIndex'), { 'server.workers': '2' });
    const c = new FlanStreamClient(ts.target);
    const spec = train({ packing: 'packed', seed: 31 });
    const whole = await batchesOf(client(0), spec, 6);
    let shut: Promise<void> | undefined;
    const call = c.streamBatches();
    const got: WireBatch[] = [];
    const end = await new Promise<{ resumeToken: Uint8Array; reason: string } | FlanStreamError>((resolve) => {
      call.on('data', (resp: WireResponse) => {
        if (resp.end) return resolve(resp.end);
        if (resp.batch && got.push(resp.batch) === 2) shut = ts.server.shutdown();
      });
      call.on('error', (err: unknown) => resolve(toFlanStreamError(err, ts.target)));
      call.write({ spec } as never);
    });
    await shut;
    c.close();
    expect('reason' in end ? end.reason : end.message).toBe('shutdown');
    const token = (end as { resumeToken: Uint8Array }).resumeToken;
    expect(Buffer.compare(Buffer.from(token), Buffer.from(got[got.length - 1]!.resumeToken))).toBe(0);
    const rest = await resumeFrom(client(0), token, 6 - got.length);
    expect(digests([...got, ...rest])).toEqual(digests(whole));
  });
});
