import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { StreamConnection, type Item } from '../../clients/ts/stream-connection.js';
import { BatchDecoder } from '../../clients/ts/wire-decode.js';
import type { Batch } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { resumeFrom } from '../helpers/grpc-stream-calls.js';

const GRACE_MS = 20_000;
/** Milliseconds per batch: two training steps and a loop that reads nothing while the server drains. */
const PAUSES = [200, 1000, 1_000_000];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** One stream read at `pause` ms per batch until `hurry` resolves, then at once. */
class SlowReader {
  readonly batches: Batch[] = [];
  last: Item | undefined;
  readonly done: Promise<void>;
  constructor(
    readonly client: FlanStreamClient,
    readonly conn: StreamConnection,
    pause: number,
    hurry: Promise<void>,
  ) {
    this.done = (async () => {
      for (;;) {
        const item = await conn.next();
        if (item.kind !== 'batch') {
          this.last = item;
          return;
        }
        this.batches.push(item.batch);
        await Promise.race([sleep(pause), hurry]);
      }
    })();
  }
}

/**
 * SIGTERM drain with slow readers and the TypeScript client: at shutdown the server builds
 * nothing more and ends every stream with StreamEnd{shutdown} carrying the token of the last
 * batch sent. The client reads the rest of the call as soon as the server announced its shutdown
 * (GOAWAY), so the server finishes well within its grace, and each reader, at its own pace, gets
 * every batch and then the end, whose token resumes right after the last batch it received.
 */
describe('TypeScript client under a draining server', () => {
  let ts: TestServer;
  let other: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.shutdown_grace_ms': String(GRACE_MS) });
    other = await startTestServer(inject('sampleIndex'));
  });
  afterAll(async () => {
    await ts?.stop();
    await other?.stop();
  });

  it("slow readers get every batch, then StreamEnd(shutdown) with the last batch's token, long before the grace ends", async () => {
    let hurryNow!: () => void;
    const hurry = new Promise<void>((r) => (hurryNow = r));
    const info = await new FlanStreamClient(ts.target).corpusInfo();
    const decoder = new BatchDecoder(info);
    const readers = PAUSES.map((pause, k) => {
      const client = new FlanStreamClient(ts.target); // its own channel, as each trainer process has
      const spec = { split: 'train', batchSize: 8, seqLen: 2048, packing: 'packed', seed: 11 + k } as const;
      const conn = new StreamConnection(client, { spec }, (b) => decoder.decode(b), 4);
      return new SlowReader(client, conn, pause, hurry);
    });
    const fresh = new FlanStreamClient(other.target);
    try {
      await expect
        .poll(() => readers.every((r) => r.batches.length > 0) && readers[0]!.batches.length >= 5, { timeout: 60_000 })
        .toBe(true);
      await sleep(3000); // the readers fall far behind the server: many batches sit in gRPC buffers
      const started = Date.now();
      await ts.server.shutdown();
      const elapsed = Date.now() - started;
      // Nothing waited for the slow readers' pace: the ends reached them long before the grace ran out.
      expect(elapsed, `the server took ${elapsed} ms of its ${GRACE_MS} ms grace`).toBeLessThan(GRACE_MS / 2);
      const seenWhenDone = readers.map((r) => r.batches.length);
      hurryNow();
      await Promise.all(readers.map((r) => r.done));
      for (const [k, r] of readers.entries()) {
        const last = r.last;
        expect(
          last?.kind,
          `reader ${PAUSES[k]} ms/batch: ${r.batches.length} batches, then ${JSON.stringify(last)}`,
        ).toBe('end');
        const end = (last as Extract<Item, { kind: 'end' }>).end;
        expect(end.reason).toBe('shutdown');
        if (PAUSES[k]! > GRACE_MS) expect(seenWhenDone[k] === 1 && r.batches.length > 1).toBe(true);
        expect(r.batches.map((b) => b.step)).toEqual([...r.batches.keys()]);
        expect(hex(end.resumeToken)).toBe(hex(r.batches.at(-1)!.resumeToken));
        const next = await resumeFrom(fresh, end.resumeToken, 1);
        expect(Number(next[0]!.step)).toBe(r.batches.length);
      }
    } finally {
      hurryNow();
      for (const r of readers) {
        r.conn.close();
        r.client.close();
      }
      fresh.close();
    }
  });
});
