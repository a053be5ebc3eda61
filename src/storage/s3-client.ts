import { isMainThread } from 'node:worker_threads';
import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { logCredentialSource, type S3Location, type S3Settings } from './s3-location.js';
import { counted, withRetries } from './s3-retry.js';

/**
 * The S3 client and the reads flanstream needs (ranged GET, HEAD, list), each retried with
 * exponential backoff on errors that a retry can fix (network, throttling, 5xx) on top of the
 * SDK's own retries (s3-retry.ts): a store that restarts costs a pause, not a stream. Writes
 * (upload, delete) are in s3-write.ts.
 * Credentials, region and endpoint come from the standard AWS environment and config files
 * (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL…) unless `S3Settings` sets them.
 * Only the S3 worker thread, the downloader and the uploader import these modules: the SDK is not loaded by a
 * process that never touches s3://.
 */
export function makeClient(s: S3Settings): S3Client {
  // The SDK warns on Node < 22 that versions released after January 2027 will need it; the
  // version in package-lock.json supports Node 20, which this project targets.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = s.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {
    region: s.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: s.forcePathStyle ?? endpoint !== undefined,
    maxAttempts: 3,
    // Sockets enough for the requests the caller lets run at once (s3-retry.ts), not the SDK's 50.
    ...(s.maxConcurrency
      ? {
          requestHandler: {
            httpAgent: { keepAlive: true, maxSockets: s.maxConcurrency },
            httpsAgent: { keepAlive: true, maxSockets: s.maxConcurrency },
          },
        }
      : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(s.accessKeyId && s.secretAccessKey
      ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } }
      : {}),
  };
  // The server's S3 worker thread is covered by S3Storage, which logs on the main thread (a
  // worker's stderr may be lost when the process exits on a failed open).
  if (isMainThread) logCredentialSource(s);
  return new S3Client(config);
}

/**
 * Bytes [offset, offset + length) of an object. With `etag` (the object's ETag when the index was
 * opened) the GET is conditional (If-Match): an object replaced since fails with
 * PreconditionFailed instead of returning bytes of another publication.
 */
export async function getRange(
  client: S3Client,
  bucket: string,
  key: string,
  offset: number,
  length: number,
  attempts: number,
  etag?: string,
): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  return withRetries(`GET ${key}`, attempts, () =>
    counted(
      async () => {
        const r = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            Range: `bytes=${offset}-${offset + length - 1}`,
            ...(etag ? { IfMatch: etag } : {}),
          }),
        );
        // Checked here too: some S3-compatible stores ignore If-Match.
        if (etag && r.ETag && r.ETag !== etag) {
          await r.Body?.transformToByteArray();
          throw Object.assign(new Error(`${key} has ETag ${r.ETag}, not ${etag}`), { name: 'PreconditionFailed' });
        }
        return r.Body ? r.Body.transformToByteArray() : new Uint8Array(0);
      },
      (b) => b.length,
    ),
  );
}

/** An object's size and last-modified time in ms (what a file's stat gives, for incremental builds). */
export type ObjectMeta = readonly [size: number, mtimeMs: number];

/** A whole object with its size and last-modified time, in one GET. */
export async function getObjectMeta(
  client: S3Client,
  bucket: string,
  key: string,
  attempts: number,
): Promise<{ data: Uint8Array; meta: ObjectMeta; etag?: string }> {
  return withRetries(`GET ${key}`, attempts, () =>
    counted(
      async () => {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const data = r.Body ? await r.Body.transformToByteArray() : new Uint8Array(0);
        return { data, meta: [data.length, r.LastModified?.getTime() ?? 0] as const, etag: r.ETag };
      },
      (r) => r.data.length,
    ),
  );
}

export async function getObject(client: S3Client, bucket: string, key: string, attempts: number): Promise<Uint8Array> {
  return (await getObjectMeta(client, bucket, key, attempts)).data;
}

export async function headObject(client: S3Client, bucket: string, key: string, attempts: number): Promise<ObjectMeta> {
  const r = await withRetries(`HEAD ${key}`, attempts, () =>
    counted(
      () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
      () => 0,
    ),
  );
  return [r.ContentLength ?? 0, r.LastModified?.getTime() ?? 0];
}

/** An object's current ETag (one HEAD). */
export async function headETag(client: S3Client, bucket: string, key: string, attempts: number): Promise<string> {
  const r = await withRetries(`HEAD ${key}`, attempts, () =>
    counted(
      () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
      () => 0,
    ),
  );
  return r.ETag ?? '';
}

export async function headBucket(client: S3Client, bucket: string, attempts: number): Promise<void> {
  await withRetries(`HEAD ${bucket}`, attempts, () => client.send(new HeadBucketCommand({ Bucket: bucket })));
}

/** Every key under a prefix (paged listing), with its size, last-modified time and ETag; at most `limit` of them. */
export async function listKeys(
  client: S3Client,
  loc: S3Location,
  attempts: number,
  limit = Infinity,
): Promise<{ key: string; size: number; mtimeMs: number; etag: string }[]> {
  const out: { key: string; size: number; mtimeMs: number; etag: string }[] = [];
  let token: string | undefined;
  do {
    const r = await withRetries('LIST', attempts, () =>
      counted(
        () =>
          client.send(
            new ListObjectsV2Command({
              Bucket: loc.bucket,
              Prefix: loc.prefix ? `${loc.prefix}/` : undefined,
              ContinuationToken: token,
              MaxKeys: Math.min(1000, limit),
            }),
          ),
        () => 0,
      ),
    );
    for (const o of r.Contents ?? [])
      if (o.Key)
        out.push({ key: o.Key, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0, etag: o.ETag ?? '' });
    token = r.IsTruncated && out.length < limit ? r.NextContinuationToken : undefined;
  } while (token);
  return out.slice(0, limit);
}
