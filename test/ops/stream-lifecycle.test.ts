import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import {
  collect,
  dataClient,
  httpGet,
  scrape,
  sleep,
  sumOf,
  type Collected,
  type DataClient,
  type Message,
} from './helpers/grpc.js';

const SPEC = { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 5 };

/** A raw call driven step by step: what it received, and how it ended. */
function rawCall(c: DataClient, drive: (call: grpc.ClientDuplexStream<object, Message>) => void): Promise<Collected> {
  return new Promise((resolve) => {
    const out: Collected = { batches: [] };
    const call = c.streamBatches();
    call.on('data', (m: Message) => {
      if (m.batch) out.batches.push(m.batch);
      else if (m.end) out.end = m.end;
    });
    call.on('error', (e: grpc.ServiceError) => {
      out.error = e;
      resolve(out);
    });
    call.on('end', () => resolve(out));
    drive(call);
  });
}

/**
 * Every way a StreamBatches call can close (src/server/stream-call.ts): whichever it is, the
 * client gets one status, the server counts it once (an error by code, or an end by reason), and
 * the call's slot, unsent bytes, per-stream metric series and status-page row are all released.
 */
describe('stream call lifecycle', () => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.first_message_timeout_ms': '500' });
    c = dataClient(ts.target);
  });
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  /** Runs `close`, then checks it was counted exactly as `counted` says and left nothing behind. */
  async function closesCleanly(
    close: () => Promise<Collected>,
    counted: { error?: string; end?: string },
  ): Promise<Collected> {
    const before = await scrape(ts.server.httpPort);
    const r = await close();
    let m = await scrape(ts.server.httpPort);
    for (let i = 0; i < 100 && sumOf(m, 'flanstream_active_streams') !== 0; i++) {
      await sleep(20);
      m = await scrape(ts.server.httpPort);
    }
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sumOf(m, name, labels) - sumOf(before, name, labels);
    expect(delta('flanstream_stream_errors_total'), 'errors counted').toBe(counted.error ? 1 : 0);
    if (counted.error) expect(delta('flanstream_stream_errors_total', { code: counted.error })).toBe(1);
    expect(delta('flanstream_stream_ends_total'), 'ends counted').toBe(counted.end ? 1 : 0);
    if (counted.end) expect(delta('flanstream_stream_ends_total', { reason: counted.end })).toBe(1);
    expect(sumOf(m, 'flanstream_active_streams')).toBe(0);
    expect(sumOf(m, 'flanstream_unsent_bytes')).toBe(0);
    expect(
      [...m.keys()].filter((k) => k.includes('stream="')),
      'per-stream series',
    ).toEqual([]);
    const status = (await (await httpGet(`http://127.0.0.1:${ts.server.httpPort}/status.json`)).json()) as {
      activeStreams: number;
      streams: unknown[];
    };
    expect(status.activeStreams).toBe(0);
    expect(status.streams).toEqual([]);
    return r;
  }

  it('awaiting the first message: closed after first_message_timeout_ms with DEADLINE_EXCEEDED', async () => {
    const started = Date.now();
    const r = await closesCleanly(() => rawCall(c, () => {}), { error: 'DEADLINE_EXCEEDED' });
    expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('awaiting the first message: a client that half-closes gets INVALID_ARGUMENT naming spec', async () => {
    const r = await closesCleanly(() => rawCall(c, (call) => call.end()), { error: 'INVALID_ARGUMENT' });
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.error?.details).toMatch(/^spec: the stream closed before its first message/);
  });

  it('a refused first message closes the call once, and later messages change nothing', async () => {
    const r = await closesCleanly(
      () =>
        rawCall(c, (call) => {
          call.write({ spec: { ...SPEC, split: 'nope' } });
          call.write({ spec: SPEC });
        }),
      { error: 'INVALID_ARGUMENT' },
    );
    expect(r.batches).toEqual([]);
    expect(r.error?.details).toMatch(/^split:/);
  });

  it('streaming: a bad later message ends the stream with INVALID_ARGUMENT after the batches sent', async () => {
    const r = await closesCleanly(
      () =>
        rawCall(c, (call) => {
          call.write({ spec: SPEC });
          call.once('data', () => call.write({ spec: SPEC }));
        }),
      { error: 'INVALID_ARGUMENT' },
    );
    expect(r.batches.length).toBeGreaterThan(0);
    expect(r.error?.details).toMatch(/only mixture_update and losses messages are accepted/);
  });

  it('streaming: max_batches ends with StreamEnd{max_batches} and its token', async () => {
    const r = await closesCleanly(() => collect(c, { spec: { ...SPEC, maxBatches: 3 } }), { end: 'max_batches' });
    expect(r.error).toBeUndefined();
    expect(r.batches).toHaveLength(3);
    expect(Buffer.from(r.end!.resumeToken)).toEqual(Buffer.from(r.batches[2]!.resumeToken));
  });

  it('streaming: a client that cancels mid-stream is neither an error nor an end, and frees everything', async () => {
    const r = await closesCleanly(() => collect(c, { spec: SPEC }, { stopAfter: 2 }), {});
    expect(r.batches).toHaveLength(2);
  });

  it('draining: a streaming call ends with StreamEnd{shutdown}, one awaiting its first message gets UNAVAILABLE', async () => {
    const own = await startTestServer(inject('sampleIndex'), { 'server.first_message_timeout_ms': '60000' });
    const oc = dataClient(own.target);
    try {
      let firstBatch!: () => void;
      const streaming = new Promise<void>((resolve) => (firstBatch = resolve));
      const running = collect(oc, { spec: SPEC }, { onBatch: (_b, n) => (n === 1 ? firstBatch() : undefined) });
      const waiting = rawCall(oc, () => {});
      await streaming;
      while (sumOf(await scrape(own.server.httpPort), 'flanstream_active_streams') < 2) await sleep(20);
      const stopped = own.stop();
      const [r, w] = await Promise.all([running, waiting]);
      await stopped;
      expect(r.error).toBeUndefined();
      expect(r.end?.reason).toBe('shutdown');
      expect(Buffer.from(r.end!.resumeToken)).toEqual(Buffer.from(r.batches.at(-1)!.resumeToken));
      expect(w.error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      oc.close();
      await own.stop();
    }
  });
});
