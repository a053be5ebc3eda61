/** Writes to S3 for publishing an index: a file uploaded in one PUT or in parts, and keys deleted in batches. */
import { open } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { withRetries } from './s3-retry.js';

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
