import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { StorageError } from '../errors.js';
import { spawnWorker } from '../util/spawn-worker.js';
import { keyOf, logCredentialSource, s3Error, type S3Location, type S3Settings } from './s3-location.js';
import type { AsyncReply, AsyncRequest, Reply, Request } from './s3-worker.js';
import { MANIFEST, S3Publication } from './s3-publication.js';
import { registerS3Counters, S3Counters } from './s3-stats.js';
import { StorageNotFound, type Storage } from './storage.js';

/**
 * `s3://bucket/prefix` through the official AWS SDK, which runs on a worker thread
 * (s3-worker.ts). Synchronous reads wait on a shared flag until the answer is posted, then take
 * it off the port without turning this thread's event loop: they block the caller as a local
 * pread does, and the worker's read-ahead makes most of them memory copies. Asynchronous reads
 * (readRangeAsync) go over a second port and are answered in any order: many ranged GETs in
 * flight at once (at most `maxConcurrency` requests of the worker), none of them blocking this
 * thread. Reads are pinned to the objects listed at open; whether the index was republished
 * since is s3-publication.ts's.
 */
export class S3Storage implements Storage {
  readonly location: string;
  readonly transferred = { requests: 0, bytes: 0 };
  private readonly loc: S3Location;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  /** Sizes and ETags of the objects under the prefix, from one listing when the index is opened. */
  private listing: Map<string, readonly [size: number, etag: string]> | undefined;
  private readonly asyncPort: MessagePort;
  private readonly waiting = new Map<number, { path: string; ok: (b: Buffer) => void; fail: (e: Error) => void }>();
  private nextId = 0;
  /** Whether the index opened is still the one published (its manifest's ETag). */
  private readonly publication: S3Publication;

  constructor(loc: S3Location, settings: S3Settings) {
    this.loc = loc;
    this.location = `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
    logCredentialSource(settings);
    const manifest = keyOf(loc, MANIFEST);
    this.publication = new S3Publication(
      this.location,
      () => this.pinned(manifest),
      () => this.call(MANIFEST, { op: 'etag', key: manifest }).toString('utf8'),
      async () => (await this.ask(MANIFEST, { op: 'etag', id: this.nextId++, key: manifest })).toString('utf8'),
      settings.manifestCheckMs ?? 5000,
    );
    const signal = new SharedArrayBuffer(4);
    this.flag = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const asyncChannel = new MessageChannel();
    this.asyncPort = asyncChannel.port1;
    this.asyncPort.on('message', (r: AsyncReply) => this.answered(r));
    // Held open (ref'd) only while reads are awaited: an idle storage never keeps the process alive.
    this.asyncPort.unref();
    const counters = new S3Counters();
    registerS3Counters(counters);
    const workerData = {
      settings,
      bucket: loc.bucket,
      signal,
      port: port2,
      asyncPort: asyncChannel.port2,
      blockBytes: settings.blockBytes ?? 256 << 10,
      readAhead: settings.readAhead ?? 4,
      cacheBlocks: settings.cacheBlocks ?? 64,
      stats: counters.buffer,
    };
    this.worker = spawnWorker(import.meta.url, 's3-worker', { workerData, transferList: [port2, asyncChannel.port2] });
    this.worker.unref();
  }

  readRangeAsync(path: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    const key = keyOf(this.loc, path);
    const etag = this.pinned(key);
    return this.ask(path, { op: 'range', id: this.nextId++, key, offset, length, etag }).catch(async (err: unknown) => {
      throw etag === undefined ? err : await this.publication.explainAsync(this.describe(path), err);
    });
  }

  /** A request on the asynchronous port: answered in any order, never blocking this thread. */
  private ask(path: string, req: AsyncRequest): Promise<Buffer> {
    return new Promise<Buffer>((ok, fail) => {
      if (this.waiting.size === 0) this.asyncPort.ref();
      this.waiting.set(req.id, { path, ok, fail });
      this.asyncPort.postMessage(req);
    });
  }

  private answered(r: AsyncReply): void {
    const w = this.waiting.get(r.id);
    if (!w) return;
    this.waiting.delete(r.id);
    if (this.waiting.size === 0) this.asyncPort.unref();
    if (!r.ok) {
      w.fail(
        r.name === 'NoSuchKey' || r.name === 'NotFound'
          ? new StorageNotFound(this.describe(w.path))
          : s3Error(this.loc, w.path, r.name, r.message),
      );
      return;
    }
    this.transferred.requests++;
    this.transferred.bytes += r.data.byteLength;
    // Offset 0 of a transferred ArrayBuffer: 4-byte aligned for Int32Array views.
    w.ok(Buffer.from(r.data));
  }

  describe(path: string): string {
    return `${this.location}/${path}`;
  }

  private call(path: string, req: Request): Buffer {
    return this.send(path, req).data;
  }

  private send(path: string, req: Request): { data: Buffer; meta?: readonly [number, number] } {
    // The worker bumps the counter after posting each answer. A wake-up can be stale (the notify
    // of the previous answer, arriving late), so the port is checked, not the wake-up trusted:
    // wait while the counter still has the value seen when the port was found empty.
    this.port.postMessage(req);
    const deadline = Date.now() + 300_000;
    let reply: Reply | undefined;
    for (;;) {
      const seen = Atomics.load(this.flag, 0);
      reply = receiveMessageOnPort(this.port)?.message as Reply | undefined;
      if (reply) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new StorageError(this.describe(path), 'no answer from the object store in 300 s', true);
      Atomics.wait(this.flag, 0, seen, left);
    }
    if (reply.ok) {
      // A copy into a buffer of its own: 4-byte aligned for Int32Array views.
      const out = Buffer.allocUnsafeSlow(reply.data.byteLength);
      out.set(reply.data);
      this.transferred.requests++;
      this.transferred.bytes += out.length;
      return { data: out, meta: reply.meta };
    }
    if (reply.name === 'NoSuchKey' || reply.name === 'NotFound') throw new StorageNotFound(this.describe(path));
    throw s3Error(this.loc, path, reply.name, reply.message);
  }

  /**
   * Sizes come from one listing of the prefix (taken on first use, when the server checks the
   * index's files): checking thousands of shards costs a few requests, not one each. The listing's
   * ETags pin later reads to the objects seen then.
   */
  size(path: string): number {
    if (!this.listing) {
      const keys = JSON.parse(this.call('', { op: 'list', prefix: this.loc.prefix }).toString('utf8')) as [
        string,
        number,
        string,
      ][];
      this.listing = new Map(keys.map(([k, size, etag]) => [k, [size, etag] as const]));
    }
    const entry = this.listing.get(keyOf(this.loc, path));
    if (entry === undefined) throw new StorageNotFound(this.describe(path));
    return entry[0];
  }

  readFile(path: string): Buffer {
    return this.call(path, { op: 'file', key: keyOf(this.loc, path) });
  }

  /**
   * A range of an object, read only if the object is still the one listed when the index was
   * opened (If-Match on its ETag). When it is not (replaced, or gone), the manifest says why: a
   * manifest replaced or deleted too means the index was republished or removed under this
   * replica (FAILED_PRECONDITION, and `changed` is set); otherwise the object alone changed, which
   * is damage to this publication, reported as a failed read (the next read tries again).
   */
  readRange(path: string, offset: number, length: number, size?: number): Buffer {
    const key = keyOf(this.loc, path);
    const etag = this.pinned(key);
    try {
      return this.call(path, { op: 'range', key, offset, length, size, etag });
    } catch (err) {
      throw etag === undefined ? err : this.publication.explain(this.describe(path), err);
    }
  }

  /** The ETag a read of `key` is pinned to (from the listing taken at open), if any. */
  private pinned(key: string): string | undefined {
    return this.listing?.get(key)?.[1] || undefined;
  }

  /**
   * Whether the index was found republished or deleted; looks again every `manifestCheckMs`
   * (one HEAD of the manifest, never waited for: see S3Publication.check).
   */
  checkPublication(): string | undefined {
    return this.publication.check();
  }

  /** Set once the publication this storage opened is found replaced or deleted: what happened. */
  get changed(): string | undefined {
    return this.publication.changed;
  }

  /** Drops what the worker holds of a file for read-ahead (bytes that failed a check): the next read fetches them again. */
  forget(path: string): void {
    this.call(path, { op: 'forget', key: keyOf(this.loc, path) });
  }

  /** A whole object with its size and last-modified time (one GET); throws StorageNotFound when it is not there. */
  readObject(path: string): { bytes: Buffer; size: number; mtimeMs: number } {
    const r = this.send(path, { op: 'object', key: keyOf(this.loc, path) });
    const [size, mtimeMs] = r.meta ?? [r.data.length, 0];
    return { bytes: r.data, size, mtimeMs };
  }

  /** Starts fetching whole objects that readObject will be asked for soon (at most 64 are held). */
  prefetch(paths: readonly string[]): void {
    if (paths.length > 0) this.call('', { op: 'prefetch', keys: paths.map((p) => keyOf(this.loc, p)) });
  }

  /** An object's size and last-modified time (one HEAD); throws StorageNotFound when it is not there. */
  stat(path: string): { size: number; mtimeMs: number } {
    const [size, mtimeMs] = this.send(path, { op: 'head', key: keyOf(this.loc, path) }).meta ?? [0, 0];
    return { size, mtimeMs };
  }

  /**
   * Every object under `dir` ('' for the whole location), at most `limit`, as [path relative to
   * `dir`, size, last-modified ms]. A flat listing, not one per directory: a thousand keys per
   * request, and no reliance on delimiter listings, which some S3-compatible stores get wrong.
   */
  listUnder(dir: string, limit = 1e9): [name: string, size: number, mtimeMs: number][] {
    const prefix = keyOf(this.loc, dir);
    const keys = JSON.parse(
      this.call(dir, { op: 'under', prefix: prefix.replace(/\/$/, ''), limit }).toString('utf8'),
    ) as [string, number, number][];
    const from = prefix === '' ? 0 : prefix.endsWith('/') ? prefix.length : prefix.length + 1;
    return keys.map(([k, size, mtimeMs]) => [k.slice(from), size, mtimeMs]);
  }

  close(): void {
    for (const w of this.waiting.values())
      w.fail(new StorageError(this.describe(w.path), 'the storage was closed while reading', true));
    this.waiting.clear();
    this.asyncPort.close();
    void this.worker.terminate();
  }
}
