import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { IdleClients } from '../helpers/idle-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf } from '../helpers/grpc-stream-calls.js';
import { scrape, sleep, sumOf } from './helpers/grpc.js';

const spec = (seed: number): object => ({
  spec: { split: 'train', batchSize: 4, seqLen: 8192, packing: 'packed', seed },
});

/** Batches built so far, once the count has stopped moving (the streams are blocked). */
async function settledBatches(ts: TestServer): Promise<Map<string, number>> {
  let last = -1;
  for (;;) {
    await sleep(300);
    const m = await scrape(ts.server.httpPort);
    const n = sumOf(m, 'flanstream_batches_total');
    if (n === last) return m;
    last = n;
  }
}

async function until(what: () => Promise<boolean>): Promise<void> {
  while (!(await what())) await sleep(50);
}

/**
 * Issue 12.3: grpc-js object-mode write() returns false only after 16 queued messages, so a client
 * that stopped reading held 16 built batches (256 idle streams took 11.7 GB). Clients here never
 * read a byte (raw HTTP/2, paused), so flow control blocks the server: each stream then holds at
 * most stream_buffer_batches built batches, the whole server at most send_budget_bytes beyond one
 * batch per stream, and a stream that reads keeps being served alongside.
 */
describe('backpressure', () => {
  it("an idle stream holds at most stream_buffer_batches (2) built batches, counting grpc-js's queue", async () => {
    const ts = await startTestServer(inject('sampleIndex'));
    const idle = new IdleClients(ts.target);
    try {
      for (const seed of [1, 2, 3, 4]) idle.open(spec(seed));
      const m = await settledBatches(ts);
      expect(sumOf(m, 'flanstream_active_streams')).toBe(4);
      // Once 16 + the ones in HTTP/2 buffers each.
      expect(sumOf(m, 'flanstream_batches_total')).toBeLessThanOrEqual(4 * 2);
      expect(sumOf(m, 'flanstream_unsent_bytes')).toBeGreaterThan(0);
      idle.close();
      // Unsent bytes of streams that went away return to the budget.
      await until(async () => sumOf(await scrape(ts.server.httpPort), 'flanstream_active_streams') === 0);
      expect(sumOf(await scrape(ts.server.httpPort), 'flanstream_unsent_bytes')).toBe(0);
    } finally {
      idle.close();
      await ts.stop();
    }
  });

  // With build workers, what a worker builds ahead is charged to the same budget.
  describe.each([0, 1])('with a server-wide budget smaller than one batch, %i build workers', (workers) => {
    let ts: TestServer;
    let idle: IdleClients;
    let client: FlanStreamClient;
    beforeAll(async () => {
      ts = await startTestServer(inject('sampleIndex'), {
        'server.send_budget_bytes': '1',
        'server.stream_buffer_batches': '8',
        'server.workers': String(workers),
      });
      idle = new IdleClients(ts.target);
      client = new FlanStreamClient(ts.target);
    });
    afterAll(async () => {
      idle?.close();
      client?.close();
      await ts?.stop();
    });

    it('idle streams hold one batch each, and a stream that reads is still served in full', async () => {
      for (const seed of [1, 2, 3, 4, 5, 6]) idle.open(spec(seed));
      // Each stream's first batch (a worker's takes a while to open and build on a loaded machine).
      await until(async () => sumOf(await scrape(ts.server.httpPort), 'flanstream_batches_total') >= 6);
      const m = await settledBatches(ts);
      expect(sumOf(m, 'flanstream_batches_total')).toBe(6);
      // Held: exactly the six batches handed to the transport (none reached the socket); nothing built ahead.
      expect(sumOf(m, 'flanstream_unsent_bytes')).toBe(sumOf(m, 'flanstream_bytes_sent_total'));
      expect(sumOf(m, 'flanstream_unsent_bytes')).toBeGreaterThan(6 * 4 * 8192);
      const batches = await batchesOf(
        client,
        { split: 'train', batchSize: 4, seqLen: 8192, packing: 'packed', seed: 9 },
        12,
      );
      expect(batches).toHaveLength(12);
      expect(batches.map((b) => b.step)).toEqual([...Array(12).keys()]);
    });
  });
});
