import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import {
  check,
  collect,
  dataClient,
  healthClient,
  httpGet,
  sleep,
  type DataClient,
  type HealthClient,
} from './helpers/grpc.js';

const SERVICE = 'flanstream.v1.DataService';

/**
 * Readiness: gRPC health (Check and Watch) and /healthz say SERVING / 200 while the index is
 * open; as soon as shutdown starts, watchers get NOT_SERVING, /healthz 503 and the gRPC port
 * refuses new connections, while open streams still drain.
 */
describe('health', () => {
  let ts: TestServer;
  let h: HealthClient;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    h = healthClient(ts.target);
    c = dataClient(ts.target);
  });
  afterAll(async () => {
    h?.close();
    c?.close();
    await ts?.stop();
  });

  it('reports SERVING over gRPC health and 200 on /healthz once the index is open', async () => {
    expect(await check(h, '')).toBe('SERVING');
    expect(await check(h, SERVICE)).toBe('SERVING');
    await expect(check(h, 'no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const r = await httpGet(`http://127.0.0.1:${ts.server.httpPort}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok\n');
  });

  it('turns NOT_SERVING (Check, Watch, /healthz) when shutdown starts, while streams drain', async () => {
    // A watcher, as a load balancer with health checking would hold.
    const watch = h.watch({ service: SERVICE });
    const seen: string[] = [];
    const watchEnded = new Promise<void>((resolve) => {
      watch.on('data', (m: { status: string }) => seen.push(m.status));
      watch.on('error', () => resolve());
      watch.on('end', () => resolve());
    });
    // A stream whose reader stops after its first batch. Its 1 MB batches overflow the HTTP/2
    // flow-control windows, so the drain cannot finish (and the server keeps answering) until it reads on.
    let call: grpc.ClientDuplexStream<object, unknown> | undefined;
    let gate!: () => void;
    const reading = new Promise<void>((resolve) => (gate = resolve));
    const stream = collect(
      c,
      { spec: { split: 'train', batchSize: 32, seqLen: 8192, packing: 'packed', seed: 1 } },
      { onCall: (x) => (call = x), onBatch: (_b, n) => (n === 1 ? reading : undefined) },
    );
    while (seen.length === 0) await sleep(10);
    expect(seen).toEqual(['SERVING']);
    await sleep(200);
    expect(call).toBeDefined();

    const stopped = ts.server.shutdown();
    const healthz = await httpGet(`http://127.0.0.1:${ts.server.httpPort}/healthz`);
    expect(healthz.status).toBe(503);
    while (seen.length < 2) await sleep(10);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    // The port is released at once (a replacement may bind it): new probes and new streams get
    // UNAVAILABLE (clients fail over), the open stream still drains.
    await expect(check(h, SERVICE)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const late = await collect(c, { spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1 } });
    expect(late.error?.code).toBe(grpc.status.UNAVAILABLE);

    gate();
    const got = await stream;
    expect(got.error).toBeUndefined();
    expect(got.end?.reason).toBe('shutdown');
    expect(Buffer.from(got.end!.resumeToken)).toEqual(Buffer.from(got.batches.at(-1)!.resumeToken));
    const t0 = Date.now();
    await stopped;
    await watchEnded;
    // Watch calls are ended by the server, not left to hold the close until the grace period.
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
