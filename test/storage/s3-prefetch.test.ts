import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { ROW } from '../../src/index/format.js';
import { IndexReader, type RecordRef } from '../../src/index/index-reader.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import { useS3Process } from '../helpers/s3-server.js';
import { S3Proxy } from '../helpers/s3-proxy.js';

/**
 * Reading ahead from object storage: a planned set of records' pages come in as concurrent ranged
 * GETs (at most read_concurrency at once) without blocking the thread, byte-identical to the same
 * index on disk; a store that keeps failing one object fails only the reads that need it, after
 * retries, as UNAVAILABLE naming that object.
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

const open = (readConcurrency: number): IndexReader => IndexReader.open(URL_, { cacheBytes: 1, s3: { ...s3.settings, endpoint: proxy.endpoint, maxAttempts: 2 }, readAhead: { prefetchBytes: 64 << 20, readConcurrency } });
const recordsOf = (shard: number, n: number): RecordRef[] => Array.from({ length: Math.min(n, local.shard(shard).records) }, (_, k) => ({ shard, row: k * 7 % local.shard(shard).records }));
const tokens = (r: IndexReader, { shard, row }: RecordRef): string => {
  const f = r.row(shard, row);
  const out = new Int32Array(f[ROW.INSTR_LEN]! + f[ROW.INPUT_LEN]! + f[ROW.OUTPUT_LEN]!);
  r.readTokens(shard, f[ROW.TOK_START]!, out.length, out, 0);
  return `${r.uuid(shard, row)}:${Buffer.from(out.buffer).toString('base64')}`;
};

describe('S3 prefetch', () => {
  it('reads a step\'s pages as concurrent ranged GETs, at most read_concurrency at once, byte-identical to the local index', async () => {
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

  it('a failing object fails only the reads that need it, after retries, as UNAVAILABLE naming it; other reads go on', async () => {
    const r = open(4);
    try {
      const bad = local.shard(1).file;
      await proxy.set({ failing: bad });
      proxy.resetCounts();
      const failed = r.residentFor(recordsOf(1, 5)).then(() => undefined, (err: unknown) => err);
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
