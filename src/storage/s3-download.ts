import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { describeError } from '../errors.js';
import { listKeys, makeClient } from './s3-client.js';
import { errorName, withRetries } from './s3-retry.js';
import { keyOf, parseS3Url, s3Error, type S3Settings } from './s3-location.js';

/**
 * The way back from object storage to a local directory, for the merge of a partitioned build
 * whose parts wrote to `s3://`: list what the parts left, and fetch the files the merge reads.
 * Objects are streamed to a temporary file and renamed, so a large shard is never whole in
 * memory and an interrupted download never looks like a complete file.
 */

/** Paths (relative to `url`) and sizes of every object under `url`/`under`. */
export async function listUnder(
  url: string,
  settings: S3Settings,
  under: string,
): Promise<{ path: string; size: number }[]> {
  const loc = parseS3Url(url);
  const prefix = keyOf(loc, under).replace(/\/$/, '');
  try {
    const keys = await listKeys(makeClient(settings), { bucket: loc.bucket, prefix }, settings.maxAttempts ?? 8);
    const from = loc.prefix ? loc.prefix.length + 1 : 0;
    return keys.map((k) => ({ path: k.key.slice(from), size: k.size }));
  } catch (err) {
    throw s3Error(loc, under, errorName(err), describeError(err));
  }
}

/** Downloads `paths` (relative to `url`) into `dir`; returns those the store does not have (the caller says what that means). */
export async function fetchFiles(
  url: string,
  settings: S3Settings,
  paths: readonly string[],
  dir: string,
  concurrency = 8,
): Promise<string[]> {
  const loc = parseS3Url(url);
  const client = makeClient(settings);
  const attempts = settings.maxAttempts ?? 8;
  const missing: string[] = [];
  const fetch = async (path: string): Promise<void> => {
    const file = join(dir, path);
    const tmp = `${file}.${process.pid}.tmp`;
    mkdirSync(dirname(file), { recursive: true });
    try {
      await withRetries(`GET ${path}`, attempts, async () => {
        const r = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: keyOf(loc, path) }));
        await pipeline(r.Body as Readable, createWriteStream(tmp));
      });
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      const name = errorName(err);
      if (name === 'NoSuchKey' || name === 'NotFound') missing.push(path);
      else throw s3Error(loc, path, name, describeError(err));
    }
  };
  const queue = [...paths];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) await fetch(p);
    }),
  );
  return missing.sort();
}
