import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { ROW } from '../../src/index/format.js';
import { IndexReader, type RecordRef } from '../../src/index/index-reader.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { useS3Process } from '../helpers/s3-server.js';
import { S3Proxy } from '../helpers/s3-proxy.js';
import { collect } from '../helpers/grpc-stream-calls.js';
import { openCore, take } from '../helpers/core-streams.js';
import { spawnServer } from '../reliability/procs.js';

/**
 * Reading ahead from object storage: a planned set of records' pages come in as concurrent ranged
 * GETs (at most read_concurrency at once, and storage.s3.max_concurrency requests of the store
 * client) without blocking the thread, byte-identical to the same
 * index on disk; a store that keeps failing one object fails only the reads that need it, after
 * retries, as UNAVAILABLE naming that object, and over gRPC ends only the streams that need it.
 */
const { s3 } = useS3Process('s3-prefetch');
let proxy: S3Proxy;
let local: IndexReader;
const URL_ = 's3://flan/idx';

beforeAll(async () => {
  await publishDirectory(inject('sampleIndex'), URL_, s3.settings, { last: [MANIFEST_FILE], immutable: () => false });
  proxy = await new S3Proxy(s3.endpoint).start();
  local = IndexReader.open(inject('sampleIndex'));
});
afterAll(async () => {
  local?.close();
  await proxy?.stop();
});

const open = (readConcurrency: number, maxConcurrency?: number): IndexReader =>
  IndexReader.open(URL_, {
    cacheBytes: 1,
    s3: { ...s3.settings, endpoint: proxy.endpoint, maxAttempts: 2, ...(maxConcurrency ? { maxConcurrency } : {}) },
    readAhead: { prefetchBytes: 64 << 20, readConcurrency },
  });
const recordsOf = (shard: number, n: number): RecordRef[] =>
  Array.from({ length: Math.min(n, local.shard(shard).records) }, (_, k) => ({
    shard,
    row: (k * 7) % local.shard(shard).records,
  }));
const tokens = (r: IndexReader, { shard, row }: RecordRef): string => {
  const f = r.row(shard, row);
  const out = new Int32Array(f[ROW.INSTR_LEN]! + f[ROW.INPUT_LEN]! + f[ROW.OUTPUT_LEN]!);
  r.readTokens(shard, f[ROW.TOK_START]!, out.length, out, 0);
  return `${r.uuid(shard, row)}:${Buffer.from(out.buffer).toString('base64')}`;
};

describe('S3 prefetch', () => {
  it("reads a step's pages as concurrent ranged GETs, at most read_concurrency at once, byte-identical to the local index", async () => {
    const r = open(3);
    try {
      await proxy.set({ delayMs: 30 });
      proxy.resetCounts();
      const records = [...recordsOf(0, 20), ...recordsOf(1, 20)];
      const held = await r.residentFor(records);
      expect(held.read).toBeGreaterThan(6);
      expect(proxy.maxInFlight).toBeLessThanOrEqual(3);
      expect(proxy.maxInFlight).toBeGreaterThan(1);
      const gets = proxy.gets;
      for (const rec of records) expect(tokens(r, rec)).toBe(tokens(local, rec));
      // Everything came from the held pages: no synchronous read, no GET.
      expect(r.cacheStats.misses).toBe(0);
      expect(proxy.gets).toBe(gets);
      held.release();
    } finally {
      await proxy.set({});
      r.close();
    }
  });

  it('at most storage.s3.max_concurrency requests reach the store at once, whatever the reader asks for', async () => {
    const r = open(16, 2);
    try {
      await proxy.set({ delayMs: 30 });
      proxy.resetCounts();
      const records = [...recordsOf(0, 20), ...recordsOf(1, 20)];
      const held = await r.residentFor(records);
      expect(held.read).toBeGreaterThan(6);
      expect(proxy.maxInFlight).toBe(2);
      for (const rec of records) expect(tokens(r, rec)).toBe(tokens(local, rec));
      held.release();
    } finally {
      await proxy.set({});
      r.close();
    }
  });

  it('a failing object fails only the reads that need it, after retries, as UNAVAILABLE naming it; other reads go on', async () => {
    // Two requests at once to the store: the failing object's retries must not take the good reads' turns.
    const r = open(4, 2);
    try {
      const bad = local.shard(1).file;
      await proxy.set({ failing: bad });
      proxy.resetCounts();
      const failed = r.residentFor(recordsOf(1, 5)).then(
        () => undefined,
        (err: unknown) => err,
      );
      const good = await r.residentFor(recordsOf(0, 5));
      for (const rec of recordsOf(0, 5)) expect(tokens(r, rec)).toBe(tokens(local, rec));
      good.release();
      const err = await failed;
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe('UNAVAILABLE');
      expect((err as Error).message).toContain(`${URL_}/${bad}`);
      // Retried (the SDK's attempts and ours), not given up on the first refusal.
      expect(proxy.refused).toBeGreaterThan(1);
      expect(r.prefetchHeld).toBe(0);
      // Once the store serves the object again, the same step reads.
      await proxy.set({});
      const again = await r.residentFor(recordsOf(1, 5));
      for (const rec of recordsOf(1, 5)) expect(tokens(r, rec)).toBe(tokens(local, rec));
      again.release();
    } finally {
      await proxy.set({});
      r.close();
    }
  });
});

describe('S3 faults on the serving path', () => {
  it('a stream whose records are in a failing object ends UNAVAILABLE naming it; a stream reading another object and the server go on', async () => {
    // Two tasks whose train records each lie in one shard, different ones.
    const single = local.tasks
      .map((t) => ({ path: t.path, shards: new Set((t.runs[0] ?? []).map(([shard]) => shard)) }))
      .filter((t) => t.shards.size === 1);
    const good = single[0]!;
    const [goodShard] = good.shards;
    const bad = single.find((t) => !t.shards.has(goodShard!))!;
    expect(bad).toBeDefined();
    const [badShard] = bad.shards;
    const badFile = local.shard(badShard!).file;
    const spec = (path: string) => ({
      split: 'train',
      batchSize: 2,
      seqLen: 2048,
      packing: 'packed',
      seed: 4,
      heldout: { name: 'none' },
      mixture: { weights: { [path]: 1 } },
      maxBatches: 5,
    });
    const server = await spawnServer(URL_, {
      'storage.s3.endpoint': proxy.endpoint,
      'storage.s3.access_key_id': s3.settings.accessKeyId!,
      'storage.s3.secret_access_key': s3.settings.secretAccessKey!,
      'storage.s3.max_attempts': '2',
      // No page stays cached, and no block of an object: every step reads what it serves, so the
      // streams below read the failing object whatever the streams before them read.
      'index.cache_bytes': '1',
      'storage.s3.cache_blocks': '1',
      'storage.s3.read_ahead_blocks': '0',
    });
    const client = new FlanStreamClient(server.target);
    const core = await openCore(inject('sampleIndex'));
    try {
      // Once per server, opening a spec scans what it can serve (every task's fitting records):
      // done before the fault, so what fails below is only what each stream's own steps read.
      for (const path of [good.path, bad.path])
        expect((await collect(client, [{ spec: { ...spec(path), maxBatches: 1 } }])).batches).toHaveLength(1);
      await proxy.set({ failing: badFile });
      const [ok, failed] = await Promise.all([
        collect(client, [{ spec: spec(good.path) }]),
        collect(client, [{ spec: spec(bad.path) }]),
      ]);
      expect(failed.error?.codeName).toBe('UNAVAILABLE');
      expect(failed.error?.details).toContain(`${URL_}/${badFile}`);
      expect(ok.error).toBeUndefined();
      const want = take(core.open({ spec: spec(good.path) }), 5).batches.map((b) =>
        Buffer.from(b.tokens).toString('base64'),
      );
      expect(ok.batches.map((b) => Buffer.from(b.tokens).toString('base64'))).toEqual(want);
      // The server is still up and serving after the failure.
      const after = await collect(client, [{ spec: { ...spec(good.path), maxBatches: 1 } }]);
      expect(after.batches).toHaveLength(1);
      expect(server.child.exitCode).toBeNull();
    } finally {
      await proxy.set({});
      client.close();
      core.catalog.reader.close();
      await server.kill();
    }
  });
});
