import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { loadConfig, printableConfig } from '../../src/config/load-config.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { IndexCorruptError } from '../../src/errors.js';
import { buildIndexTo } from '../../src/index/build-to.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import type { S3Settings } from '../../src/storage/s3-location.js';
import { spawnServer, type ChildServer } from '../reliability/procs.js';
import { S3Process, S3_KEY, S3_SECRET } from '../helpers/s3-server.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf, collect } from '../helpers/grpc-stream-calls.js';
import { digests } from '../helpers/batch-digests.js';

/**
 * An index on object storage, against a real S3-protocol server (s3rver, its own process on
 * 127.0.0.1): published by `flanstream index --out s3://…`, served by a server process reading
 * pages by ranged GETs, byte-identical to the same index on local disk.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-s3-'));
const s3 = new S3Process(join(base, 's3'), 'flan');
let settings: S3Settings;
let overrides: Record<string, string>;
let local: TestServer;
const children: ChildServer[] = [];
const SPECS = [
  { split: 'train', batchSize: 4, seqLen: 2048, packing: 'packed', seed: 3 },
  {
    split: 'train',
    batchSize: 2,
    seqLen: 4096,
    packing: 'multiturn',
    seed: 5,
    heldout: { name: 'loco-speech-caption' },
  },
];

beforeAll(async () => {
  await s3.start();
  settings = s3.settings;
  overrides = {
    'storage.s3.endpoint': s3.endpoint,
    'storage.s3.access_key_id': S3_KEY,
    'storage.s3.secret_access_key': S3_SECRET,
    'storage.s3.max_attempts': '10',
  };
  // Staged from a copy of the shared sample index: the build finds every shard current and publishes.
  const stage = join(base, 'stage');
  cpSync(inject('sampleIndex'), stage, { recursive: true });
  const first = await buildIndexTo({
    corpus: inject('sampleCorpus'),
    out: 's3://flan/sample',
    stage,
    workers: 1,
    audioRoots: [SAMPLE_AUDIO_ROOT],
    s3: settings,
  });
  expect(first.shardsBuilt).toBe(0);
  expect(first.published!.uploaded).toBe(readdirSync(join(stage, 'shards')).length + 4);
  local = await startTestServer(inject('sampleIndex'));
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await local?.stop();
  await s3.stop();
  rmSync(base, { recursive: true, force: true });
});

async function serveS3(location: string, extra: Record<string, string> = {}): Promise<ChildServer> {
  const c = await spawnServer(location, { ...overrides, ...extra });
  children.push(c);
  return c;
}

describe('index on S3', () => {
  it('republishing uploads only the manifest: content-named files already there are skipped', async () => {
    const again = await publishDirectory(join(base, 'stage'), 's3://flan/sample', settings, {
      last: [MANIFEST_FILE],
      immutable: (f) => f !== MANIFEST_FILE && f !== 'tokenizer.json' && f !== 'quarantine.jsonl',
    });
    expect(again.uploaded).toBe(3);
    expect(again.skipped).toBe(readdirSync(join(base, 'stage', 'shards')).length + 1);
  });

  it('opening reads the manifest only; streams touch a fraction of the index', () => {
    const r = IndexReader.open('s3://flan/sample', { s3: settings, cacheBytes: 1 << 20 });
    try {
      expect(r.storage.transferred).toEqual({
        requests: 1,
        bytes: statSync(join(inject('sampleIndex'), MANIFEST_FILE)).size,
      });
      const l = IndexReader.open(inject('sampleIndex'));
      expect(r.fingerprint).toBe(l.fingerprint);
      // A record's tokens, row and uuid read by range are those of the local file.
      const i = r.manifest.shards.length - 1;
      const n = r.shard(i).tokens;
      const [a, b] = [new Int32Array(n), new Int32Array(n)];
      r.readTokens(i, 0, n, a, 0);
      l.readTokens(i, 0, n, b, 0);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      expect(r.uuid(i, 0)).toBe(l.uuid(i, 0));
      const total = r.manifest.shards.reduce((s, sh) => s + sh.bytes, 0);
      expect(r.storage.transferred.bytes).toBeLessThan(total / 4);
      l.close();
    } finally {
      r.close();
    }
  });

  it('a server over s3:// streams byte-identical batches to one over the local index (packed, multiturn with shared-audio exclusion)', async () => {
    const remote = await serveS3('s3://flan/sample');
    const client = new FlanStreamClient(remote.target);
    const want = new FlanStreamClient(local.target);
    for (const spec of SPECS) {
      const got = await batchesOf(client, spec, 12);
      expect(got).toHaveLength(12);
      expect(digests(got)).toEqual(digests(await batchesOf(want, spec, 12)));
    }
    client.close();
    want.close();
  });

  it('the S3 server restarted mid-stream: the stream pauses, retries, and continues with exactly the local batches', async () => {
    // Small caches, so that the batches after the restart need ranged GETs.
    const remote = await serveS3('s3://flan/sample', {
      'index.cache_bytes': '262144',
      'storage.s3.cache_blocks': '1',
      'storage.s3.read_ahead_blocks': '0',
      'storage.s3.block_bytes': '65536',
    });
    const client = new FlanStreamClient(remote.target);
    const spec = SPECS[0]!;
    const n = 30;
    const batches: unknown[] = [];
    let restarted: Promise<void> | undefined;
    let back = false;
    let afterBack = 0;
    const r = await new Promise<{ error?: unknown }>((resolve) => {
      const call = client.streamBatches();
      call.on('data', (resp: { batch?: unknown }) => {
        if (!resp.batch) return;
        batches.push(resp.batch);
        if (back) afterBack++;
        if (batches.length === 5) restarted = s3.restart(1500).then(() => void (back = true));
        if (batches.length === n) {
          call.cancel();
          resolve({});
        }
      });
      call.on('error', (error: unknown) => resolve({ error }));
      call.on('end', () => resolve({}));
      call.write({ spec: { ...spec, maxBatches: n } } as never);
    });
    await restarted;
    expect(r.error).toBeUndefined();
    // Most of the stream came after the store was back (it was down for part of it): with caches
    // this small those batches were read from the restarted store.
    expect(afterBack).toBeGreaterThan(10);
    expect(digests(batches as never)).toEqual(digests(await batchesOf(new FlanStreamClient(local.target), spec, n)));
    client.close();
  });

  it('a corrupted object is DATA_LOSS naming its s3:// URL', async () => {
    const stage = join(base, 'corrupt');
    cpSync(inject('sampleIndex'), stage, { recursive: true });
    const m = IndexReader.open(stage);
    const victim = m.manifest.shards.findIndex((s) => s.tokens > 0);
    const file = m.manifest.shards[victim]!.file;
    // One flipped byte in the first token page of every shard: any stream reads one of them.
    for (const s of m.manifest.shards) {
      const bytes = readFileSync(join(stage, s.file));
      bytes[10] = (bytes[10] ?? 0) ^ 0xff;
      writeFileSync(join(stage, s.file), bytes);
    }
    m.close();
    await publishDirectory(stage, 's3://flan/corrupt', settings, { last: [MANIFEST_FILE], immutable: () => false });
    const r = IndexReader.open('s3://flan/corrupt', { s3: settings });
    try {
      const out = new Int32Array(16);
      let err: unknown;
      try {
        r.readTokens(victim, 0, 16, out, 0);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IndexCorruptError);
      expect((err as IndexCorruptError).code).toBe('DATA_LOSS');
      expect(String(err)).toContain(`s3://flan/corrupt/${file}: tokens page 0 fails its checksum`);
    } finally {
      r.close();
    }
    // Through a server: the stream that needs that page ends with DATA_LOSS naming the object.
    const remote = await serveS3('s3://flan/corrupt');
    const client = new FlanStreamClient(remote.target);
    const got = await collect(client, [{ spec: { ...SPECS[0], maxBatches: 5 } }]);
    expect(got.error?.code).toBe(Status.DATA_LOSS);
    expect(got.error?.message).toMatch(
      /s3:\/\/flan\/corrupt\/shards\/[0-9a-f]+\.bin: tokens page 0 fails its checksum/,
    );
    client.close();
  });

  // s3rver checks access key ids but not V4 signatures, so a wrong secret (SignatureDoesNotMatch on
  // AWS and MinIO, mapped the same way) cannot be shown here; an unknown key id can.
  it('bad credentials: the server refuses to start, saying the store refused them', async () => {
    await expect(
      spawnServer('s3://flan/sample', { ...overrides, 'storage.s3.access_key_id': 'NOBODY' }),
    ).rejects.toThrow(/s3:\/\/flan\/sample: the store refused the credentials \(unknown access key id\)/);
    await expect(
      buildIndexTo({ corpus: inject('sampleCorpus'), out: 's3://flan/i', s3: { ...settings, accessKeyId: 'NOBODY' } }),
    ).rejects.toThrow(/s3:\/\/flan\/i: access denied; check the credentials/);
  });

  it('--print-config masks the secret key', () => {
    const { config } = loadConfig(
      undefined,
      { 'storage.s3.access_key_id': 'AKIA1', 'storage.s3.secret_access_key': 'very-secret' },
      {},
    );
    expect((printableConfig(config) as { storage: { s3: Record<string, string> } }).storage.s3).toMatchObject({
      access_key_id: 'AKIA1',
      secret_access_key: '********',
    });
  });

  it('a missing bucket or prefix: a clear error at start', async () => {
    await expect(spawnServer('s3://no-such-bucket/x', overrides)).rejects.toThrow(
      /s3:\/\/no-such-bucket: the bucket does not exist/,
    );
    await expect(spawnServer('s3://flan/not-an-index', overrides)).rejects.toThrow(
      /s3:\/\/flan\/not-an-index\/manifest\.msgpack: no index here \(manifest\.msgpack is missing\)/,
    );
    await expect(
      buildIndexTo({ corpus: inject('sampleCorpus'), out: 's3://no-such-bucket/i', s3: settings }),
    ).rejects.toThrow(/s3:\/\/no-such-bucket: the bucket does not exist/);
  });
});
