import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { IdleClients } from '../helpers/idle-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { resumeFrom } from '../helpers/grpc-stream-calls.js';
import { scrape, sleep, sumOf } from './helpers/grpc.js';

/** Once batches stop being built: every stream is blocked on its reader. */
async function settled(ts: TestServer): Promise<void> {
  let last = -1;
  for (;;) {
    await sleep(300);
    const n = sumOf(await scrape(ts.server.httpPort), 'flanstream_batches_total');
    if (n === last) return;
    last = n;
  }
}

const SPEC = { split: 'train', batchSize: 8, seqLen: 8192, packing: 'packed' };

/**
 * Issue 12.6: on shutdown, slow readers were cut off by RST without a StreamEnd: up to 16 built
 * batches (several MB) sat in grpc-js's queue ahead of the StreamEnd, more than a slow trainer
 * reads in the grace period. With at most stream_buffer_batches queued, each slow reader (here
 * ~0.2 MB/s, batches of ~0.3 MB) gets every queued batch and then StreamEnd{shutdown} with the
 * token of the last batch it received, within the grace period; that token resumes exactly.
 */
describe('drain reaches slow readers', () => {
  let ts: TestServer;
  let other: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.shutdown_grace_ms': '8000' });
    other = await startTestServer(inject('sampleIndex'));
  });
  afterAll(async () => {
    await ts?.stop();
    await other?.stop();
  });

  it("every slow stream gets its queued batches, then StreamEnd with the last batch's token; the token resumes exactly", async () => {
    const slow = new IdleClients(ts.target);
    try {
      const runs = [1, 2, 3].map((seed) => slow.openSlow({ spec: { ...SPEC, seed } }, 8 << 10, 40));
      // Let the streams run into flow control: the server is ahead of every reader.
      await settled(ts);
      const started = Date.now();
      await ts.server.shutdown();
      const elapsed = Date.now() - started;
      const results = await Promise.all(runs);
      expect(elapsed).toBeLessThan(8000);
      const client = new FlanStreamClient(other.target);
      try {
        for (const [k, r] of results.entries()) {
          const batches = r.responses
            .filter((m) => m.batch)
            .map((m) => m.batch as { step: number; resumeToken: Uint8Array });
          const end = r.responses.at(-1)?.end as { reason: string; resumeToken: Uint8Array } | undefined;
          expect(end, `stream ${k}: ${batches.length} batches, then no StreamEnd (RST ${r.rstCode})`).toBeDefined();
          expect(end!.reason).toBe('shutdown');
          expect(batches.length).toBeGreaterThan(0);
          expect(Buffer.from(end!.resumeToken).equals(Buffer.from(batches.at(-1)!.resumeToken))).toBe(true);
          // The token continues right after the last batch received.
          const next = await resumeFrom(client, end!.resumeToken, 1);
          expect(Number(next[0]!.step)).toBe(Number(batches.at(-1)!.step) + 1);
        }
      } finally {
        client.close();
      }
    } finally {
      slow.close();
    }
  });
});
