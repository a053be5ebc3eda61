import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { makeClient } from '../../src/storage/s3-client.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import { putFile } from '../../src/storage/s3-write.js';
import { collect } from '../helpers/grpc-stream-calls.js';
import { useS3Process } from '../helpers/s3-server.js';
import { check, healthClient, sleep } from '../ops/helpers/grpc.js';
import { spawnServer, type ChildServer } from '../reliability/procs.js';

/**
 * An index on object storage republished under a live server that reads nothing meanwhile: the
 * server looks at its manifest's ETag every `storage.s3.manifest_check_ms` (a HEAD it never
 * waits for), as it stats a local manifest, and turns NOT_SERVING saying why; new streams get
 * FAILED_PRECONDITION naming the publication. The same manifest uploaded again is no change.
 */
const { base, s3 } = useS3Process('s3-republish');
const URL_ = 's3://flan/live';
let server: ChildServer;
let stderr = '';

beforeAll(async () => {
  await publishDirectory(inject('sampleIndex'), URL_, s3.settings, { last: [MANIFEST_FILE], immutable: () => false });
  server = await spawnServer(URL_, {
    'storage.s3.endpoint': s3.endpoint,
    'storage.s3.access_key_id': s3.settings.accessKeyId!,
    'storage.s3.secret_access_key': s3.settings.secretAccessKey!,
    'storage.s3.manifest_check_ms': '200',
  });
  server.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
}, 60_000);
afterAll(async () => {
  await server?.kill();
});

/** Uploads `bytes` as the index's manifest. */
async function putManifest(bytes: Buffer): Promise<void> {
  const dir = mkdtempSync(join(base, 'manifest-'));
  try {
    writeFileSync(join(dir, MANIFEST_FILE), bytes);
    await putFile(makeClient(s3.settings), 'flan', `live/${MANIFEST_FILE}`, join(dir, MANIFEST_FILE), 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const spec = { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 3, maxBatches: 2 };

describe('an S3 index republished under a live server', () => {
  it('the same manifest uploaded again is no change; another turns the server NOT_SERVING, new streams FAILED_PRECONDITION', async () => {
    const client = new FlanStreamClient(server.target);
    const h = healthClient(server.target);
    try {
      expect((await collect(client, [{ spec }])).batches).toHaveLength(2);
      const manifest = readFileSync(join(inject('sampleIndex'), MANIFEST_FILE));
      await putManifest(manifest);
      await sleep(1000); // five looks at the manifest
      expect(await check(h)).toBe('SERVING');

      // Another publication's manifest (its bytes differ): nothing is read meanwhile, yet the server notices.
      await putManifest(Buffer.concat([manifest, Buffer.from([0])]));
      const t0 = Date.now();
      while ((await check(h)) !== 'NOT_SERVING' && Date.now() - t0 < 10_000) await sleep(100);
      expect(await check(h)).toBe('NOT_SERVING');
      expect(stderr).toMatch(/"event":"index_changed"/);

      const fresh = await collect(client, [{ spec }]);
      expect(fresh.error?.code).toBe(Status.FAILED_PRECONDITION);
      expect(fresh.error?.details).toMatch(
        /the index this replica opened \(manifest\.msgpack ETag .+\) was republished \(ETag now .+\) under it; restart the replica/,
      );
      expect(server.child.exitCode).toBeNull();
    } finally {
      client.close();
      h.close();
    }
  }, 60_000);
});
