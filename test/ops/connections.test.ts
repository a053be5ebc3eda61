import { connect, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { check, collect, dataClient, healthClient, httpGet, scrape, sleep, sumOf } from './helpers/grpc.js';

const MAX_CONNECTIONS = 8;
const HANDSHAKE_MS = 400;
const MAX_WATCHES = 3;

/** A TCP connection to `port` that never sends a byte; `closed` resolves when the server closes it. */
function idle(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

async function refusals(httpPort: number, reason: string): Promise<number> {
  return sumOf(await scrape(httpPort), 'flanstream_connections_refused_total', { reason });
}

/**
 * Connections are bounded (server.max_connections, server.handshake_timeout_ms): a flood of
 * TCP connections that never speak neither holds file descriptors nor locks out health checks,
 * trainers or /healthz; each refusal is counted by reason; Watch calls have their own cap.
 */
describe('connection limits', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), {
      'server.max_connections': String(MAX_CONNECTIONS),
      'server.handshake_timeout_ms': String(HANDSHAKE_MS),
      'server.max_health_watches': String(MAX_WATCHES),
    });
  });
  afterAll(async () => {
    await ts?.stop();
  });

  it('a connection that never sends the HTTP/2 preface is closed after handshake_timeout_ms', async () => {
    const before = await refusals(ts.server.httpPort, 'handshake_timeout');
    const started = Date.now();
    const { closed } = await idle(ts.server.port);
    await Promise.race([
      closed,
      sleep(10 * HANDSHAKE_MS).then(() => expect.fail('the server kept a silent connection open')),
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(await refusals(ts.server.httpPort, 'handshake_timeout')).toBe(before + 1);
  });

  it('a connection that speaks something else than HTTP/2 is closed at once', async () => {
    const before = await refusals(ts.server.httpPort, 'not_http2');
    const { socket, closed } = await idle(ts.server.port);
    const started = Date.now();
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await closed;
    expect(Date.now() - started).toBeLessThan(HANDSHAKE_MS);
    expect(await refusals(ts.server.httpPort, 'not_http2')).toBe(before + 1);
  });

  it('2,000 idle connections: at most max_connections stay open, and health, /healthz and streams still answer', async () => {
    const before =
      (await refusals(ts.server.httpPort, 'max_connections')) +
      (await refusals(ts.server.httpPort, 'handshake_timeout'));
    // In waves the size of the listen backlog: beyond it the kernel answers for a server that
    // never sees the connection, which would count as open here without costing the server a thing.
    const flood: Awaited<ReturnType<typeof idle>>[] = [];
    for (let wave = 0; wave < 10; wave++)
      flood.push(...(await Promise.all(Array.from({ length: 200 }, () => idle(ts.server.port)))));
    let open = flood.length;
    for (const f of flood) void f.closed.then(() => open--);
    try {
      for (let i = 0; i < 250 && open > MAX_CONNECTIONS; i++) await sleep(20);
      // The server closed all but at most max_connections of them (their file descriptors too).
      expect(open).toBeLessThanOrEqual(MAX_CONNECTIONS);
      const h = healthClient(ts.target);
      const c = dataClient(ts.target);
      try {
        expect(await check(h)).toBe('SERVING');
        expect((await httpGet(`http://127.0.0.1:${ts.server.httpPort}/healthz`)).status).toBe(200);
        const r = await collect(c, {
          spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, maxBatches: 2 },
        });
        expect(r.error).toBeUndefined();
        expect(r.batches).toHaveLength(2);
      } finally {
        h.close();
        c.close();
      }
      const m = await scrape(ts.server.httpPort);
      expect(sumOf(m, 'flanstream_connections')).toBeLessThanOrEqual(MAX_CONNECTIONS);
      const closedByServer =
        sumOf(m, 'flanstream_connections_refused_total', { reason: 'max_connections' }) +
        sumOf(m, 'flanstream_connections_refused_total', { reason: 'handshake_timeout' });
      expect(closedByServer).toBeGreaterThanOrEqual(before + flood.length - MAX_CONNECTIONS);
    } finally {
      for (const f of flood) f.socket.destroy();
    }
  }, 30_000);

  it('clients that finished their handshake are never displaced; beyond the cap newcomers are refused', async () => {
    // Each its own connection (grpc-js shares one between clients of a target otherwise).
    const own = (): ReturnType<typeof healthClient> =>
      healthClient(ts.target, undefined, { 'grpc.use_local_subchannel_pool': 1 });
    const clients = Array.from({ length: MAX_CONNECTIONS }, own);
    try {
      for (const h of clients) expect(await check(h)).toBe('SERVING');
      const before = await refusals(ts.server.httpPort, 'max_connections');
      const extra = own();
      try {
        await expect(check(extra)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        extra.close();
      }
      expect(await refusals(ts.server.httpPort, 'max_connections')).toBeGreaterThan(before);
      // The established ones still answer on their connections.
      for (const h of clients) expect(await check(h)).toBe('SERVING');
    } finally {
      for (const h of clients) h.close();
      for (let i = 0; i < 100 && sumOf(await scrape(ts.server.httpPort), 'flanstream_connections') > 0; i++)
        await sleep(20);
    }
  }, 30_000);

  it('Watch calls beyond max_health_watches get RESOURCE_EXHAUSTED, counted', async () => {
    const h = healthClient(ts.target, undefined, { 'grpc.use_local_subchannel_pool': 1 });
    const calls: grpc.ClientReadableStream<{ status: string }>[] = [];
    try {
      const watch = (): Promise<{ status?: string; error?: grpc.ServiceError }> =>
        new Promise((resolve) => {
          const call = (h as unknown as { watch(req: object): grpc.ClientReadableStream<{ status: string }> }).watch({
            service: '',
          });
          calls.push(call);
          call.once('data', (m: { status: string }) => resolve({ status: m.status }));
          call.once('error', (error: grpc.ServiceError) => resolve({ error }));
        });
      for (let i = 0; i < MAX_WATCHES; i++) expect(await watch()).toEqual({ status: 'SERVING' });
      const refused = await watch();
      expect(refused.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refused.error?.details).toMatch(/server\.max_health_watches/);
      const m = await scrape(ts.server.httpPort);
      expect(sumOf(m, 'flanstream_health_watches_refused_total')).toBe(1);
      expect(sumOf(m, 'flanstream_health_watches')).toBe(MAX_WATCHES);
    } finally {
      for (const c of calls) c.cancel();
      h.close();
    }
  });
});
