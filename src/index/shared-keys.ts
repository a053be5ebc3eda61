import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ROW, ROW_WIDTH, type ShardMeta } from './format.js';

/** Quads [keyLo, keyHi, shard, row] a bucket buffers before writing them to its file. */
const CHUNK_QUADS = 1 << 14;

/** One key range's quads: in memory when the whole corpus fits one bucket, else in a temporary file. */
class Bucket {
  private chunk = new Int32Array(CHUNK_QUADS * 4);
  private used = 0;
  private readonly chunks: Int32Array[] = [];
  private fd: number | undefined;

  constructor(private readonly file: string | undefined) {}

  add(lo: number, hi: number, s: number, r: number): void {
    this.chunk.set([lo, hi, s, r], this.used);
    this.used += 4;
    if (this.used === this.chunk.length) this.flush();
  }

  private flush(): void {
    const full = this.chunk.subarray(0, this.used);
    if (this.file === undefined) this.chunks.push(full);
    else {
      this.fd ??= openSync(this.file, 'w');
      const b = Buffer.from(full.buffer, full.byteOffset, full.byteLength);
      for (let at = 0; at < b.length;) at += writeSync(this.fd, b, at, b.length - at);
    }
    this.chunk = new Int32Array(CHUNK_QUADS * 4);
    this.used = 0;
  }

  /** Every quad added, in one array; the temporary file is removed. */
  drain(): Int32Array {
    this.flush();
    if (this.file === undefined) {
      const out = new Int32Array(this.chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of this.chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    }
    if (this.fd === undefined) return new Int32Array(0);
    closeSync(this.fd);
    const buf = readFileSync(this.file);
    rmSync(this.file, { force: true });
    return new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  }
}

/**
 * Quads per bucket by default: a bucket of 2^20 quads is 16 MB, sorted through an index array and a
 * copy. On a 5M-record synthetic index the whole merge step peaked at 416 MB RSS with 2^22, 291 MB
 * with 2^20 and 219 MB with 2^16, and the smaller sorts were no slower (test/bench/merge-bench.ts).
 * Each bucket holds an open file while the pass fills it: 2^20 keeps that near 100 files at 10⁸
 * records, where 2^16 would need 1,700.
 */
export const PER_BUCKET = 1 << 20;

/** Adds one quad [keyLo, keyHi, shard, row] to the pass (to the bucket of its key). */
export type AddQuad = (lo: number, hi: number, s: number, r: number) => void;

/**
 * Quads [keyLo, keyHi, shard, row] of the whole corpus, bucket by bucket, each bucket sorted by
 * key (hi, then lo, signed), shard and row — in bounded memory. Keys are hashes, so cutting the
 * signed range of keyHi into B equal ranges gives B buckets of about equal size, already in key
 * order, and equal keys always share a bucket. `fill` adds every quad (temporary files
 * `<tag>.bucket-<b>.<pid>.tmp` in `dir` when B > 1); then each bucket alone is read, sorted and
 * yielded. At most about `perBucket` quads are in memory at a time, whatever the corpus size: the
 * merge of a partitioned build over 10⁸ records does the cross-shard steps (audio groups,
 * duplicate uuids) like the one-process build, with the same bytes.
 */
export function* sortedKeyBuckets(
  dir: string,
  tag: string,
  total: number,
  perBucket: number,
  fill: (add: AddQuad) => void,
): Generator<Int32Array> {
  const B = Math.max(1, Math.ceil(total / perBucket));
  const file = (b: number): string => join(dir, `${tag}.bucket-${b}.${process.pid}.tmp`);
  const buckets = Array.from({ length: B }, (_, b) => new Bucket(B === 1 ? undefined : file(b)));
  try {
    fill((lo, hi, s, r) => buckets[Math.min(B - 1, Math.floor(((hi + 2 ** 31) * B) / 2 ** 32))]!.add(lo, hi, s, r));
    for (const bucket of buckets) {
      const q = bucket.drain();
      const n = q.length / 4;
      const order = Uint32Array.from({ length: n }, (_, i) => i).sort(
        (a, b) =>
          q[a * 4 + 1]! - q[b * 4 + 1]! ||
          q[a * 4]! - q[b * 4]! ||
          q[a * 4 + 2]! - q[b * 4 + 2]! ||
          q[a * 4 + 3]! - q[b * 4 + 3]!,
      );
      const sorted = new Int32Array(q.length);
      order.forEach((k, i) => sorted.set(q.subarray(k * 4, k * 4 + 4), i * 4));
      yield sorted;
    }
  } finally {
    for (let b = 0; b < B && B > 1; b++) rmSync(file(b), { force: true });
  }
}

/** Calls `fn(from, to)` for every run [from, to) of two or more quads with the same key in a sorted bucket. */
export function forEachSharedRun(q: Int32Array, fn: (from: number, to: number) => void): void {
  const n = q.length / 4;
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && q[j * 4] === q[i * 4] && q[j * 4 + 1] === q[i * 4 + 1]) j++;
    if (j - i > 1) fn(i, j);
    i = j;
  }
}

/**
 * Every record whose audio key (its first input clip) is shared with another record, as quads
 * [keyLo, keyHi, shard, row] sorted by key, shard and row (see sortedKeyBuckets), one bucket's
 * share at a time: the caller writes each out before the next is sorted. Records `dropped`
 * (duplicate uuids) take no part.
 */
export function* sharedKeyQuads(
  dir: string,
  shards: readonly ShardMeta[],
  rowsOf: (s: number) => Int32Array,
  perBucket = PER_BUCKET,
  dropped?: (s: number, r: number) => boolean,
): Generator<Buffer> {
  const total = shards.reduce((n, s) => n + s.records, 0);
  const buckets = sortedKeyBuckets(dir, 'audio-groups', total, perBucket, (add) => {
    shards.forEach((shard, s) => {
      const rows = rowsOf(s);
      for (let r = 0; r < shard.records; r++) {
        const lo = rows[r * ROW_WIDTH + ROW.AUDIO_KEY_LO] ?? 0;
        const hi = rows[r * ROW_WIDTH + ROW.AUDIO_KEY_HI] ?? 0;
        if ((lo !== 0 || hi !== 0) && !dropped?.(s, r)) add(lo, hi, s, r);
      }
    });
  });
  for (const q of buckets) {
    const runs: Int32Array[] = [];
    forEachSharedRun(q, (from, to) => runs.push(q.subarray(from * 4, to * 4)));
    const res = new Int32Array(runs.reduce((n, r) => n + r.length, 0));
    let at = 0;
    for (const r of runs) {
      res.set(r, at);
      at += r.length;
    }
    yield Buffer.from(res.buffer, res.byteOffset, res.byteLength);
  }
}
