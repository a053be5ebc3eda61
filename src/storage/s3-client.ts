import { open } from 'node:fs/promises';
import { isMainThread } from 'node:worker_threads';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { logCredentialSource, type S3Location, type S3Settings } from './s3-location.js';
import type { S3Counters } from './s3-stats.js';

/**
 * The S3 client and the few operations flanstream needs (ranged GET, list, multipart upload),
 * each retried with exponential backoff on errors that a retry can fix (network, throttling,
 * 5xx) on top of the SDK's own retries: a store that restarts costs a pause, not a stream.
 * Credentials, region and endpoint come from the standard AWS environment and config files
 * (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL…) unless `S3Settings` sets them.
 * Only the S3 worker thread and the uploader import this module: the SDK is not loaded by a
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

/** Errors that another attempt cannot fix: wrong credentials or bucket, a key that is not there, an object that changed (If-Match). */
const FINAL = new Set([
  'CredentialsProviderError',
  'PreconditionFailed',
  'NoSuchKey',
  'NotFound',
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidRange',
  'InvalidBucketName',
  'Forbidden',
  'PermanentRedirect',
]);

export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'Unknown' || e.name === undefined)
    return status === 404
      ? 'NotFound'
      : status === 403
        ? 'Forbidden'
        : status === 412
          ? 'PreconditionFailed'
          : String(e.Code ?? e.name ?? 'Error');
  return e.name;
}

/** Where this thread counts its requests (the S3 worker sets it; /metrics reads it). */
let counters: S3Counters | undefined;
export function countRequestsIn(c: S3Counters): void {
  counters = c;
}

/** An outage: logged when a request first fails and is retried, and when one succeeds again. */
let failing = false;
function logOutage(
  event: 's3_retry' | 's3_recovered' | 's3_error',
  what: string,
  err?: unknown,
  attempt?: number,
): void {
  const e = err as { message?: string } | undefined;
  console.error(
    JSON.stringify({
      event,
      request: what,
      ...(err ? { error: errorName(err), message: e?.message ?? String(err) } : {}),
      ...(attempt ? { attempt } : {}),
    }),
  );
}

/** One request, timed and counted with the bytes it brought. */
async function counted<T>(fn: () => Promise<T>, bytes: (r: T) => number): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  counters?.request((performance.now() - t0) / 1000, bytes(r));
  return r;
}

export async function withRetries<T>(what: string, attempts: number, fn: () => Promise<T>): Promise<T> {
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fn();
      if (failing) {
        failing = false;
        logOutage('s3_recovered', what);
      }
      return r;
    } catch (err) {
      const final = FINAL.has(errorName(err));
      if (final || attempt >= attempts) {
        counters?.error();
        if (!final) logOutage('s3_error', what, err, attempt);
        throw err;
      }
      counters?.retry();
      if (!failing) {
        failing = true;
        logOutage('s3_retry', what, err, attempt);
      }
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
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

/** Uploads a local file: one PUT when small, a multipart upload of `partBytes` parts otherwise (aborted on failure). */
export async function putFile(
  client: S3Client,
  bucket: string,
  key: string,
  file: string,
  attempts: number,
  partBytes = 16 << 20,
): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const read = async (off: number, len: number): Promise<Buffer> => {
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, off);
      return buf;
    };
    if (size <= partBytes) {
      const body = await read(0, size);
      await withRetries(`PUT ${key}`, attempts, () =>
        client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body })),
      );
      return;
    }
    const { UploadId } = await withRetries(`PUT ${key}`, attempts, () =>
      client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })),
    );
    try {
      const parts: { ETag: string | undefined; PartNumber: number }[] = [];
      for (let off = 0, n = 1; off < size; off += partBytes, n++) {
        const body = await read(off, Math.min(partBytes, size - off));
        const r = await withRetries(`PUT ${key} part ${n}`, attempts, () =>
          client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: body })),
        );
        parts.push({ ETag: r.ETag, PartNumber: n });
      }
      await withRetries(`PUT ${key}`, attempts, () =>
        client.send(
          new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
        ),
      );
    } catch (err) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
      throw err;
    }
  } finally {
    await fh.close();
  }
}

/** Deletes keys in batches of 1000 (one DeleteObjects request each); a key the store could not delete is an error naming it. */
export async function deleteKeys(
  client: S3Client,
  bucket: string,
  keys: readonly string[],
  attempts: number,
): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const r = await withRetries('DELETE', attempts, () =>
      client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      ),
    );
    const failed = r.Errors?.[0];
    if (failed)
      throw Object.assign(new Error(`cannot delete ${failed.Key ?? '?'}: ${failed.Message ?? ''}`), {
        name: failed.Code ?? 'DeleteFailed',
      });
  }
}
