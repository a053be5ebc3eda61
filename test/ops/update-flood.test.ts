import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { dataClient, sleep, type DataClient, type Message } from './helpers/grpc.js';

const SPEC = { split: 'train', batchSize: 16, seqLen: 4096, packing: 'packed', seed: 5 };
/** Within server.max_updates_per_second (200): no update is refused for its rate. */
const UPDATES_PER_SECOND = 150;
const FLOOD_MS = 4000;

/**
 * A client that keeps sending mixture updates (within the rate limit) while it reads. With
 * `serve --workers N` an update holds the stream until the worker answers it, and the worker
 * drops what it built ahead: each update used to arrive before the batch it waited for, so the
 * stream stalled with no error. Updates that arrive while one is being answered now wait for the
 * next batch (those for the same step coalesce, the last one wins), so the stream keeps serving.
 */
describe.each<{ name: string; overrides: Record<string, string> }>([
  { name: 'on the server thread', overrides: {} },
  { name: 'with --workers 2', overrides: { 'server.workers': '2' } },
])('a flood of mixture updates ($name)', ({ overrides }) => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), overrides);
    c = dataClient(ts.target);
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  it('does not stall the stream', async () => {
    const call = c.streamBatches(new grpc.Metadata());
    const steps: number[] = [];
    const targets = new Map<number, number[]>();
    let error: grpc.ServiceError | undefined;
    call.on('data', (m: Message) => {
      if (!m.batch) return;
      steps.push(Number(m.batch.step));
      targets.set(
        Number(m.batch.step),
        [...m.batch.stats.domainTarget].sort((a, b) => a - b),
      );
    });
    call.on('error', (e: grpc.ServiceError) => (error = e));
    call.write({ spec: SPEC });
    while (steps.length === 0 && !error) await sleep(10);
    const before = steps.length;
    const until = Date.now() + FLOOD_MS;
    let sent = 0;
    // Alternating weights for two far steps, sent as a raw stream of messages (no waiting for batches).
    for (let i = 0; Date.now() < until && !error; i++) {
      call.write({
        mixtureUpdate: { weights: { speech: 1 + (i % 7), music: 1, audio: 1 }, applyAtStep: 100_000 + (i % 2) },
      });
      sent++;
      await sleep(1000 / UPDATES_PER_SECOND);
    }
    const during = steps.length - before;
    // Then a burst for one step, after the rate window: the last of them is what that step serves.
    await sleep(1100);
    const at = steps[steps.length - 1]! + 150;
    for (const speech of [2, 3, 4, 5, 6])
      call.write({ mixtureUpdate: { weights: { speech, music: 1, audio: 1 }, applyAtStep: at } });
    for (let i = 0; i < 3000 && !targets.has(at) && !error; i++) await sleep(10);
    call.cancel();
    expect(error).toBeUndefined();
    expect(targets.get(at)).toEqual([1 / 8, 1 / 8, 6 / 8].map((x) => expect.closeTo(x, 9)));
    expect(sent).toBeGreaterThan(FLOOD_MS / 100);
    // A stalled stream serves none; a loaded machine (two cores shared) still serves several.
    expect(during, `batches served during ${sent} updates in ${FLOOD_MS} ms`).toBeGreaterThanOrEqual(2);
    // Steps stay consecutive: nothing was skipped or sent twice around the updates.
    expect(steps).toEqual(steps.map((_, k) => steps[0]! + k));
  }, 60_000);
});
