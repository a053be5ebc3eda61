import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { check, collect, dataClient, healthClient, sleep, type DataClient, type HealthClient } from './helpers/grpc.js';

const train = (extra: object = {}): object => ({
  spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, ...extra },
});
const statusOf = (r: { error?: grpc.ServiceError }): string => (r.error ? grpc.status[r.error.code] : 'OK');

/**
 * Issue 12.2, 12.4, 12.5, 12.14: requests whose work the server bounds before doing it. A step of
 * world_size × batch_size × seq_len rows, a mixture of a million selectors and a stream that never
 * speaks each used to hold the event loop or a slot; each is now refused (or timed out) with a
 * status naming the limit, and a big step within the limits is planned in slices, with health
 * answered in between.
 */
describe('work limits', () => {
  let ts: TestServer;
  let c: DataClient;
  let h: HealthClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), {
      'server.max_streams': '2',
      'server.first_message_timeout_ms': '400',
    });
    c = dataClient(ts.target);
    h = healthClient(ts.target);
  });
  afterAll(async () => {
    c?.close();
    h?.close();
    await ts?.stop();
  });

  it('a step over max_step_tokens (world 4096 x batch 128 x seq_len 8192) is refused with RESOURCE_EXHAUSTED naming the limit', async () => {
    const r = await collect(c, train({ worldSize: 4096, batchSize: 128, seqLen: 8192 }));
    expect(statusOf(r)).toBe('RESOURCE_EXHAUSTED');
    expect(r.error!.details).toMatch(/^server\.max_step_tokens .*4294967296 exceeds the server limit of 268435456/);
    expect(r.error!.metadata.get('flanstream-limit')[0]).toMatch(/^server\.max_step_tokens/);
  });

  it('a big step within the limit is planned in slices: health is answered while it is built', async () => {
    // 1024 ranks x 32 x 8192 = 2^28 tokens: seconds of planning, once done in one piece.
    let firstBatchAt = 0;
    let answered = 0;
    let stop = false;
    const probes = (async () => {
      while (!stop) {
        expect(await check(h)).toBe('SERVING');
        if (!firstBatchAt) answered++;
        await sleep(20);
      }
    })();
    const r = await collect(c, train({ worldSize: 1024, batchSize: 32, seqLen: 8192, maxBatches: 1 }), {
      onBatch: () => void (firstBatchAt = Date.now()),
    });
    stop = true;
    await probes;
    expect(r.error).toBeUndefined();
    expect(r.batches).toHaveLength(1);
    expect(answered, 'health checks answered before the first batch of the big step').toBeGreaterThanOrEqual(3);
  });

  it('a mixture of 100,000 selectors is refused with RESOURCE_EXHAUSTED naming max_selectors, as is a held-out set of as many', async () => {
    const weights = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`speech/x${i}`, 1]));
    const r = await collect(c, train({ mixture: { weights } }));
    expect(statusOf(r)).toBe('RESOURCE_EXHAUSTED');
    expect(r.error!.details).toMatch(
      /^server\.max_selectors \(selectors in mixture\.weights\): 100000 exceeds the server limit of 1024/,
    );
    const held = await collect(c, train({ heldout: { inline: true, selectors: Object.keys(weights) } }));
    expect(statusOf(held)).toBe('RESOURCE_EXHAUSTED');
    expect(held.error!.details).toMatch(/selectors in heldout\.selectors/);
    const updates = await collect(c, {
      ...train(),
      updates: Array.from({ length: 65 }, (_, i) => ({ weights: { speech: 1 }, applyAtStep: 10 + i })),
    });
    expect(statusOf(updates)).toBe('RESOURCE_EXHAUSTED');
  });

  it('streams that never send a first message are closed after first_message_timeout_ms, freeing their slots', async () => {
    const silent = [0, 1].map(
      () =>
        new Promise<grpc.ServiceError>((resolve) => {
          const call = c.streamBatches(new grpc.Metadata());
          call.on('data', () => undefined);
          call.on('error', resolve);
        }),
    );
    const errors = await Promise.all(silent);
    for (const e of errors) {
      expect(grpc.status[e.code]).toBe('DEADLINE_EXCEEDED');
      expect(e.details).toMatch(/^server\.first_message_timeout_ms: no spec or resume token within 400 ms/);
    }
    const r = await collect(c, train({ maxBatches: 2 }));
    expect(r.error).toBeUndefined();
    expect(r.batches).toHaveLength(2);
  });
});

/**
 * Issue 12.14: `examples` packing sends whole records, not seq_len rows, so batch_size x seq_len
 * did not bound its messages (batch 8192 x seq_len 16 made 18.6 MB). A batch message over
 * max_message_bytes is refused with RESOURCE_EXHAUSTED naming the limit before it is queued.
 */
describe('message size', () => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), {
      'server.max_batch_tokens': '4096',
      'server.max_message_bytes': '65536',
    });
    c = dataClient(ts.target, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  });
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  it('an examples batch over max_message_bytes is refused naming the limit; batches within it are served', async () => {
    const r = await collect(c, { spec: { split: 'test', batchSize: 256, seqLen: 16, packing: 'examples' } });
    expect(statusOf(r)).toBe('RESOURCE_EXHAUSTED');
    expect(r.error!.details).toMatch(
      /^server\.max_message_bytes \(bytes of one batch message; lower batch_size\): \d+ exceeds the server limit of 65536/,
    );
    const small = await collect(c, {
      spec: { split: 'test', batchSize: 4, seqLen: 16, packing: 'examples', maxBatches: 2 },
    });
    expect(small.error).toBeUndefined();
    expect(small.batches).toHaveLength(2);
  });
});
