import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { collect, corpusInfo, dataClient, httpGet, sleep, type DataClient } from './helpers/grpc.js';

const train = (extra: object = {}): object => ({
  spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, ...extra },
});

/** Server limits: each answered with the status the contract names, and the server stays up. */
describe('limits', () => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), {
      'server.max_streams': '2',
      'server.max_batch_tokens': '65536',
      'server.max_seq_len': '8192',
      'server.max_updates_per_second': '5',
      'server.max_message_bytes': String(1 << 20),
      'server.max_request_bytes': String(1 << 20),
    });
    c = dataClient(ts.target);
  });
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  it('max_streams: the extra stream gets RESOURCE_EXHAUSTED, a slot freed is usable again', async () => {
    const cancels: (() => void)[] = [];
    const open = [1, 2].map((seed) =>
      collect(c, train({ seed }), { onCall: (call) => cancels.push(() => call.cancel()), onBatch: () => sleep(20) }),
    );
    while ((await activeStreams()) < 2) await sleep(20);
    const extra = await collect(c, train({ maxBatches: 1 }));
    expect(extra.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(extra.error?.details).toMatch(/concurrent streams: 3 exceeds the server limit of 2/);
    cancels[0]!();
    while ((await activeStreams()) > 1) await sleep(20);
    const again = await collect(c, train({ maxBatches: 2 }));
    expect(again.error).toBeUndefined();
    expect(again.batches).toHaveLength(2);
    cancels[1]!();
    await Promise.all(open);
  });

  it('batch_size × seq_len over max_batch_tokens: INVALID_ARGUMENT naming batch_size; seq_len over max_seq_len names seq_len', async () => {
    const big = await collect(c, train({ batchSize: 64, seqLen: 2048 }));
    expect(big.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(big.error?.details).toMatch(/^batch_size: .*131072.*65536/);
    const long = await collect(c, train({ batchSize: 1, seqLen: 16384 }));
    expect(long.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(long.error?.details).toMatch(/^seq_len/);
    const fits = await collect(c, train({ batchSize: 32, seqLen: 2048, maxBatches: 1 }));
    expect(fits.error).toBeUndefined();
  });

  it('mixture updates faster than max_updates_per_second: RESOURCE_EXHAUSTED', async () => {
    let call: grpc.ClientDuplexStream<object, unknown> | undefined;
    const r = await collect(c, train(), {
      onCall: (x) => (call = x),
      onBatch: (_b, n) => {
        // Updates follow the spec once the stream runs; ten in a burst, five allowed per second.
        if (n === 1)
          for (let i = 0; i < 10; i++)
            call?.write({ mixtureUpdate: { weights: { speech: 1 + i, music: 1, audio: 1 }, applyAtStep: 1000 + i } });
        return sleep(5);
      },
    });
    expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.error?.details).toMatch(/mixture updates per second: 6 exceeds the server limit of 5/);
  });

  it('a request over max_request_bytes: RESOURCE_EXHAUSTED, the server stays up', async () => {
    const r = await collect(c, train({ mixture: { weights: { ['x'.repeat(2 << 20)]: 1 } } }));
    expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await corpusInfo(c)).tasks).toHaveLength(80);
  });

  async function activeStreams(): Promise<number> {
    const s = (await (await httpGet(`http://127.0.0.1:${ts.server.httpPort}/status.json`)).json()) as {
      activeStreams: number;
    };
    return s.activeStreams;
  }
});

/** The server reads only its index: a shard symlinked out of the index is refused, not read. */
describe('paths', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flanstream-paths-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves an index reached through a symlinked directory (a mounted volume)', async () => {
    symlinkSync(inject('sampleIndex'), join(dir, 'linked-index'));
    const ts = await startTestServer(join(dir, 'linked-index'));
    const c = dataClient(ts.target);
    try {
      const r = await collect(c, train({ maxBatches: 2 }));
      expect(r.error).toBeUndefined();
      expect(r.batches).toHaveLength(2);
    } finally {
      c.close();
      await ts.stop();
    }
  });

  it('refuses shard files that are symlinks leaving the index (DATA_LOSS naming the file)', async () => {
    const index = join(dir, 'index');
    const outside = join(dir, 'outside');
    cpSync(inject('sampleIndex'), index, { recursive: true });
    mkdirSync(outside);
    for (const f of readdirSync(join(index, 'shards'))) {
      copyFileSync(join(index, 'shards', f), join(outside, f));
      unlinkSync(join(index, 'shards', f));
      symlinkSync(join(outside, f), join(index, 'shards', f));
    }
    let ts: TestServer | undefined;
    try {
      ts = await startTestServer(index);
    } catch (err) {
      // Refusing at start-up is as good as refusing at the first read.
      expect(String(err)).toMatch(/symlink leaving the index/);
      return;
    }
    const c = dataClient(ts.target);
    try {
      const r = await collect(c, train({ maxBatches: 2 }));
      expect(r.batches).toHaveLength(0);
      expect(r.error?.code).toBe(grpc.status.DATA_LOSS);
      expect(r.error?.details).toMatch(/shards\/.*symlink leaving the index; refused/);
    } finally {
      c.close();
      await ts.stop();
    }
  });
});
