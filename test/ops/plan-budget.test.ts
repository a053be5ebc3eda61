import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { planBytes } from '../../src/stream/plan-memory.js';
import type { Placement, StreamSpec } from '../../src/stream/stream-spec.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { collect, dataClient, scrape, sleep, sumOf, type DataClient, type Message } from './helpers/grpc.js';

const SPEC = { split: 'train', batchSize: 2, seqLen: 1024, worldSize: 64, packing: 'packed' };
/** The estimate of SPEC (the server's default window, 256). */
const EACH = planBytes(
  { batchSize: SPEC.batchSize, seqLen: SPEC.seqLen, window: 256 } as StreamSpec,
  { worldSize: SPEC.worldSize, rank: 0, maxBatches: 0 } as Placement,
);
/** Room for three such streams, not four. */
const BUDGET = 3 * EACH + Math.floor(EACH / 2);

interface Held {
  readonly call: grpc.ClientDuplexStream<object, Message>;
  /** Settles with the call's error status, or undefined once it ended cleanly. */
  readonly ended: Promise<grpc.ServiceError | undefined>;
}

/** Opens a stream and resolves once its first batch arrived (then stops reading), or with its refusal. */
function open(c: DataClient, seed: number): Promise<Held | grpc.ServiceError> {
  const call = c.streamBatches(new grpc.Metadata());
  const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
    call.on('error', (e: grpc.ServiceError) => resolve(e));
    call.on('end', () => resolve(undefined));
  });
  call.write({ spec: { ...SPEC, seed, rank: seed % SPEC.worldSize } });
  return new Promise((resolve) => {
    call.once('data', () => {
      call.pause();
      resolve({ call, ended });
    });
    void ended.then((e) => e && resolve(e));
  });
}

async function plans(httpPort: number): Promise<{ budget: number; used: number; refusals: number }> {
  const m = await scrape(httpPort);
  return {
    budget: sumOf(m, 'flanstream_plan_budget_bytes'),
    used: sumOf(m, 'flanstream_plan_bytes'),
    refusals: sumOf(m, 'flanstream_plan_refusals_total'),
  };
}

async function settle(httpPort: number, want: number): Promise<number> {
  let used = (await plans(httpPort)).used;
  for (let i = 0; i < 150 && used !== want; i++) {
    await sleep(20);
    used = (await plans(httpPort)).used;
  }
  return used;
}

/**
 * server.plan_budget_bytes: streams are admitted while their estimated planning memory fits,
 * the next one is refused with RESOURCE_EXHAUSTED naming the budget and its estimate, and the
 * memory comes back however a stream ends (cancelled, failed, ended), so a new stream opens.
 * The raw HTTP/2 ways a call ends (resets, closed connections, GOAWAY) are in call-ends.test.ts.
 */
describe.each<{ name: string; overrides: Record<string, string> }>([
  { name: 'on the server thread', overrides: {} },
  { name: 'with --workers 2', overrides: { 'server.workers': '2' } },
])('the planning budget ($name)', ({ overrides }) => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.plan_budget_bytes': String(BUDGET), ...overrides });
    c = dataClient(ts.target);
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  it('refuses a stream beyond it and takes it back however streams end', async () => {
    const held: Held[] = [];
    try {
      for (let seed = 1; seed <= 3; seed++) {
        const h = await open(c, seed);
        expect(h, `stream ${seed} of 3 fits`).toHaveProperty('call');
        held.push(h as Held);
      }
      expect(await plans(ts.server.httpPort)).toEqual({ budget: BUDGET, used: 3 * EACH, refusals: 0 });

      const refused = await open(c, 4);
      expect(refused).not.toHaveProperty('call');
      const err = refused as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(err.details).toContain('server.plan_budget_bytes');
      expect(err.details).toContain(`needs an estimated ${EACH} bytes`);
      expect(err.details).toContain(`open streams hold ${3 * EACH}`);
      expect(err.details).toContain(`${4 * EACH} exceeds the server limit of ${BUDGET}`);
      // The streams already open go on.
      expect(await plans(ts.server.httpPort)).toEqual({ budget: BUDGET, used: 3 * EACH, refusals: 1 });
      held[0]!.call.resume();
      await new Promise((resolve) => held[0]!.call.once('data', resolve));

      // Cancelled by the client; failed by a bad second message; the client's side half-closed
      // and then cancelled.
      held[0]!.call.cancel();
      held[1]!.call.write({ spec: SPEC });
      held[1]!.call.resume();
      expect((await held[1]!.ended)?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(await settle(ts.server.httpPort, EACH)).toBe(EACH);
      held[2]!.call.end();
      held[2]!.call.cancel();
      expect(await settle(ts.server.httpPort, 0)).toBe(0);

      // Ended by the server (max_batches): served, then its memory is back.
      const fresh = await collect(c, { spec: { ...SPEC, seed: 9, maxBatches: 2 } });
      expect(fresh.error).toBeUndefined();
      expect(fresh.batches).toHaveLength(2);
      expect(fresh.end?.reason).toBe('max_batches');
      expect(await settle(ts.server.httpPort, 0)).toBe(0);

      // A stream that alone exceeds the budget is told to lower its spec.
      const huge = await collect(c, { spec: { ...SPEC, worldSize: 4096 } });
      expect(huge.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(huge.error?.details).toContain('more than the whole budget; lower world_size x batch_size x seq_len');
      expect((await plans(ts.server.httpPort)).refusals).toBe(2);
    } finally {
      for (const h of held) h.call.cancel();
    }
  }, 60_000);
});
