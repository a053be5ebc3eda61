import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { spawnServer, type ChildServer } from '../reliability/procs.js';
import { S3Process, S3_KEY, S3_SECRET } from '../helpers/s3-server.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf, collect } from '../helpers/grpc-stream-calls.js';
import { digests } from '../helpers/batch-digests.js';
import { check, healthClient, httpGet } from '../ops/helpers/grpc.js';

const run = promisify(execFile);
const AWS = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';
const SPEC = { split: 'train', batchSize: 4, seqLen: 2048, packing: 'packed', seed: 3 };

/**
 * An index on object storage under the faults an operator meets, with the real AWS CLI
 * publishing, damaging, restoring and deleting objects in a real S3-protocol server (s3rver):
 * an outage is logged and ridden out; damaged shard objects give DATA_LOSS until they are
 * restored, and not a request longer; a deleted publication gives FAILED_PRECONDITION naming it
 * and turns the replica NOT_SERVING; /metrics counts the S3 traffic and passes promtool.
 */
describe('index on S3: outages, damage, deletion, metrics', () => {
  const base = mkdtempSync(join(tmpdir(), 'flanstream-s3-faults-'));
  const s3 = new S3Process(join(base, 's3'), 'flan');
  let local: TestServer;
  let remote: ChildServer;
  let stderr = '';
  const aws = (...args: string[]): Promise<{ stdout: string }> =>
    run(AWS, ['--endpoint-url', s3.endpoint, ...args], {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: S3_KEY,
        AWS_SECRET_ACCESS_KEY: S3_SECRET,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_PAGER: '',
      },
    });

  beforeAll(async () => {
    await s3.start();
    await aws('s3', 'cp', '--recursive', '--only-show-errors', inject('sampleIndex'), 's3://flan/live');
    local = await startTestServer(inject('sampleIndex'));
    // Small caches everywhere, so that each stream below reads from the store.
    remote = await spawnServer('s3://flan/live', {
      'storage.s3.endpoint': s3.endpoint,
      'storage.s3.access_key_id': S3_KEY,
      'storage.s3.secret_access_key': S3_SECRET,
      'storage.s3.max_attempts': '10',
      'index.cache_bytes': '262144',
      'storage.s3.cache_blocks': '1',
      'storage.s3.read_ahead_blocks': '0',
      'storage.s3.block_bytes': '65536',
    });
    remote.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  }, 120_000);
  afterAll(async () => {
    await remote?.kill();
    await local?.stop();
    await s3.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const metrics = async (): Promise<string> => (await httpGet(`http://127.0.0.1:${remote.httpPort}/metrics`)).text();
  const value = (text: string, name: string): number =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

  it('an outage mid-stream is logged, retried and ridden out: the batches equal the local ones', async () => {
    const want = digests(await batchesOf(new FlanStreamClient(local.target), SPEC, 10));
    const client = new FlanStreamClient(remote.target);
    await s3.stop();
    const down = new Promise((r) => setTimeout(r, 1500)).then(() => s3.start());
    const got = await batchesOf(client, SPEC, 10);
    await down;
    client.close();
    expect(digests(got)).toEqual(want);
    expect(stderr).toMatch(/"event":"s3_retry"/);
    expect(stderr).toMatch(/"event":"s3_recovered"/);
    expect(value(await metrics(), 'flanstream_s3_retries_total')).toBeGreaterThan(0);
  }, 120_000);

  it('damaged shard objects are DATA_LOSS while damaged, and read again once restored', async () => {
    const shards = join(inject('sampleIndex'), 'shards');
    const damaged = join(base, 'damaged');
    cpSync(shards, damaged, { recursive: true });
    for (const f of readdirSync(damaged)) {
      const b = readFileSync(join(damaged, f));
      for (let i = 64; i < b.length; i += 97) b[i] = b[i]! ^ 0xff;
      writeFileSync(join(damaged, f), b);
    }
    await aws('s3', 'cp', '--recursive', '--only-show-errors', damaged, 's3://flan/live/shards');
    const client = new FlanStreamClient(remote.target);
    const spec = { ...SPEC, seed: 11 };
    const bad = await collect(client, [{ spec: { ...spec, maxBatches: 10 } }]);
    expect(bad.error?.code).toBe(Status.DATA_LOSS);
    expect(bad.error?.message).toMatch(
      /s3:\/\/flan\/live\/shards\/[0-9a-f]+\.bin.*was replaced since the index was opened, while its manifest was not/,
    );
    const h = healthClient(remote.target);
    expect(await check(h)).toBe('SERVING'); // the same publication, damaged: not a reason to leave
    await aws('s3', 'cp', '--recursive', '--only-show-errors', shards, 's3://flan/live/shards');
    const got = await batchesOf(client, spec, 10);
    expect(digests(got)).toEqual(digests(await batchesOf(new FlanStreamClient(local.target), spec, 10)));
    client.close();
    h.close();
  }, 120_000);

  it('a deleted publication is FAILED_PRECONDITION naming it, and the replica turns NOT_SERVING', async () => {
    await aws('s3', 'rm', '--recursive', '--only-show-errors', 's3://flan/live');
    const client = new FlanStreamClient(remote.target);
    const gone = await collect(client, [{ spec: { ...SPEC, seed: 23, maxBatches: 10 } }]);
    client.close();
    expect(gone.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(gone.error?.message).toMatch(
      /s3:\/\/flan\/live: the index this replica opened \(manifest\.msgpack ETag .*\) was deleted under it/,
    );
    const h = healthClient(remote.target);
    const t0 = Date.now();
    while ((await check(h)) !== 'NOT_SERVING' && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
    expect(await check(h)).toBe('NOT_SERVING');
    h.close();
    expect(stderr).toMatch(/"event":"index_changed"/);
  }, 60_000);

  it('/metrics counts S3 requests, bytes, latency, retries and errors, and passes promtool', async () => {
    const text = await metrics();
    expect(value(text, 'flanstream_s3_requests_total')).toBeGreaterThan(0);
    expect(value(text, 'flanstream_s3_received_bytes_total')).toBeGreaterThan(0);
    expect(value(text, 'flanstream_s3_errors_total')).toBeGreaterThan(0);
    expect(value(text, 'flanstream_s3_request_duration_seconds_count')).toBe(
      value(text, 'flanstream_s3_requests_total'),
    );
    expect(value(text, 'flanstream_s3_request_duration_seconds_bucket\\{le="\\+Inf"\\}')).toBe(
      value(text, 'flanstream_s3_requests_total'),
    );
    const file = join(base, 'metrics.txt');
    writeFileSync(file, text);
    const r = await run('sh', ['-c', `promtool check metrics < ${file}`]).then(
      (x) => ({ code: 0, out: x.stdout + x.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
      }),
    );
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });
});
