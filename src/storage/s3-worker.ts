import { workerData, type MessagePort } from 'node:worker_threads';
import {
  getObject,
  getObjectMeta,
  getRange,
  headETag,
  headObject,
  listKeys,
  makeClient,
  type ObjectMeta,
} from './s3-client.js';
import { countRequestsIn, errorName, limitRequestsTo } from './s3-retry.js';
import type { S3Settings } from './s3-location.js';
import { S3Counters } from './s3-stats.js';
import { describeError } from '../errors.js';

/**
 * The S3 side of S3Storage: runs the SDK on its own event loop, so the server's thread can wait
 * for a page synchronously (Atomics.wait) while this one talks HTTP. Ranges are read in aligned
 * blocks; after each read the next blocks of the same object are fetched in the background, so
 * the pages a sequential reader is about to need are already here when it asks.
 */
export type Request =
  // `etag`: the object's ETag when the index was opened; the read fails (PreconditionFailed) if it changed.
  | {
      readonly op: 'range';
      readonly key: string;
      readonly offset: number;
      readonly length: number;
      readonly size?: number;
      readonly etag?: string;
    }
  | { readonly op: 'etag'; readonly key: string }
  // Drops an object's blocks held for read-ahead (after they failed a check): the next read fetches them again.
  | { readonly op: 'forget'; readonly key: string }
  | { readonly op: 'file'; readonly key: string }
  | { readonly op: 'list'; readonly prefix: string }
  // For reading a corpus: a whole object with its size and time, an object's size and time, the keys under a prefix with their times.
  | { readonly op: 'object'; readonly key: string }
  | { readonly op: 'head'; readonly key: string }
  | { readonly op: 'under'; readonly prefix: string; readonly limit: number }
  | { readonly op: 'prefetch'; readonly keys: readonly string[] };
export type Reply =
  | { readonly ok: true; readonly data: Uint8Array; readonly meta?: ObjectMeta }
  | { readonly ok: false; readonly name: string; readonly message: string };
/**
 * An asynchronous ranged read, or an object's current ETag (one HEAD), on a port of their own:
 * answers come back in any order, matched by id.
 */
export type AsyncRequest =
  | {
      readonly op: 'range';
      readonly id: number;
      readonly key: string;
      readonly offset: number;
      readonly length: number;
      readonly etag?: string;
    }
  | { readonly op: 'etag'; readonly id: number; readonly key: string };
export type AsyncReply = { readonly id: number } & (
  | { readonly ok: true; readonly data: ArrayBuffer }
  | { readonly ok: false; readonly name: string; readonly message: string }
);

const { settings, bucket, signal, port, asyncPort, blockBytes, readAhead, cacheBlocks, stats } = workerData as {
  settings: S3Settings;
  bucket: string;
  signal: SharedArrayBuffer;
  port: MessagePort;
  asyncPort: MessagePort;
  blockBytes: number;
  readAhead: number;
  cacheBlocks: number;
  stats: SharedArrayBuffer;
};
countRequestsIn(new S3Counters(stats));
limitRequestsTo(settings.maxConcurrency ?? 64);
const flag = new Int32Array(signal);
const client = makeClient(settings);
const attempts = settings.maxAttempts ?? 8;
/** Blocks by `key@block`, oldest first (a Map keeps insertion order): a bounded read-ahead buffer. */
const blocks = new Map<string, Promise<Uint8Array>>();

function block(key: string, b: number, etag: string | undefined): Promise<Uint8Array> {
  const id = `${key}@${b}`;
  let p = blocks.get(id);
  if (p) {
    blocks.delete(id);
    blocks.set(id, p);
    return p;
  }
  p = getRange(client, bucket, key, b * blockBytes, blockBytes, attempts, etag);
  blocks.set(id, p);
  // A failed block is not kept: the next read tries again.
  p.catch(() => blocks.delete(id));
  while (blocks.size > cacheBlocks) blocks.delete(blocks.keys().next().value!);
  return p;
}

async function range(
  key: string,
  offset: number,
  length: number,
  size: number | undefined,
  etag: string | undefined,
): Promise<Uint8Array> {
  const first = Math.floor(offset / blockBytes);
  const last = Math.floor((offset + Math.max(length, 1) - 1) / blockBytes);
  for (let b = last + 1; b <= last + readAhead && (size === undefined || b * blockBytes < size); b++)
    block(key, b, etag).catch(() => undefined);
  const parts = await Promise.all(Array.from({ length: last - first + 1 }, (_, k) => block(key, first + k, etag)));
  const out = new Uint8Array(length);
  let done = 0;
  for (let k = 0; k < parts.length && done < length; k++) {
    const part = parts[k]!;
    const from = k === 0 ? offset - first * blockBytes : 0;
    const n = Math.min(length - done, part.length - from);
    if (n <= 0) break;
    out.set(part.subarray(from, from + n), done);
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

/** Whole objects fetched ahead of an `object` request (a corpus's clips, named before they are read), oldest first, bounded by count. */
const PREFETCHED = 64;
const objects = new Map<string, Promise<{ data: Uint8Array; meta: ObjectMeta }>>();

function prefetch(keys: readonly string[]): void {
  for (const key of keys) {
    if (objects.has(key)) continue;
    const p = getObjectMeta(client, bucket, key, attempts);
    p.catch(() => undefined);
    objects.set(key, p);
    while (objects.size > PREFETCHED) objects.delete(objects.keys().next().value!);
  }
}

/** A prefetched object is handed out once (its failure too: it had its retries); otherwise one GET now. */
function object(key: string): Promise<{ data: Uint8Array; meta: ObjectMeta }> {
  const p = objects.get(key);
  if (!p) return getObjectMeta(client, bucket, key, attempts);
  objects.delete(key);
  return p;
}

async function handle(req: Request): Promise<{ data: Uint8Array; meta?: ObjectMeta }> {
  switch (req.op) {
    case 'range':
      return { data: await range(req.key, req.offset, req.length, req.size, req.etag) };
    case 'etag':
      return { data: new TextEncoder().encode(await headETag(client, bucket, req.key, attempts)) };
    case 'forget':
      for (const id of [...blocks.keys()]) if (id.startsWith(`${req.key}@`)) blocks.delete(id);
      return { data: new Uint8Array(0) };
    case 'file':
      return { data: await getObject(client, bucket, req.key, attempts) };
    case 'list':
      return {
        data: json(
          (await listKeys(client, { bucket, prefix: req.prefix }, attempts)).map((k) => [k.key, k.size, k.etag]),
        ),
      };
    case 'object':
      return object(req.key);
    case 'prefetch':
      prefetch(req.keys);
      return { data: new Uint8Array(0) };
    case 'head':
      return { data: new Uint8Array(0), meta: await headObject(client, bucket, req.key, attempts) };
    case 'under':
      return {
        data: json(
          (await listKeys(client, { bucket, prefix: req.prefix }, attempts, req.limit)).map((k) => [
            k.key,
            k.size,
            k.mtimeMs,
          ]),
        ),
      };
  }
}

port.on('message', (req: Request) => {
  handle(req)
    .then(
      (r) => port.postMessage({ ok: true, ...r } satisfies Reply),
      (err: unknown) =>
        port.postMessage({ ok: false, name: errorName(err), message: describeError(err) } satisfies Reply),
    )
    .finally(() => {
      Atomics.add(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
});

// Asynchronous reads: exactly the range asked for (the caller plans which pages it needs, so no
// read-ahead), each one ranged GET with retries, as many in flight as the bound on requests lets
// (and the caller bounds how many it asks for). The bytes go back in an ArrayBuffer of their own,
// transferred, not copied. An ETag comes back as its UTF-8 bytes.
asyncPort.on('message', (req: AsyncRequest) => {
  const read =
    req.op === 'etag'
      ? headETag(client, bucket, req.key, attempts).then((etag) => new TextEncoder().encode(etag))
      : getRange(client, bucket, req.key, req.offset, req.length, attempts, req.etag);
  read.then(
    (data) => {
      const out = new Uint8Array(data.byteLength);
      out.set(data);
      asyncPort.postMessage({ id: req.id, ok: true, data: out.buffer } satisfies AsyncReply, [out.buffer]);
    },
    (err: unknown) =>
      asyncPort.postMessage({
        id: req.id,
        ok: false,
        name: errorName(err),
        message: describeError(err),
      } satisfies AsyncReply),
  );
});
