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
      for (let at = 0; at < b.length; ) at += writeSync(this.fd, b, at, b.length - at);
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
 * Every record whose audio key (its first input clip) is shared with another record, as quads
 * [keyLo, keyHi, shard, row] sorted by key (hi, then lo, signed), shard and row — in bounded
 * memory. Keys are hashes, so cutting the signed range of keyHi into B equal ranges gives B
 * buckets of about equal size, already in key order, and equal keys always share a bucket. Pass 1
 * appends each record's quad to its bucket (temporary files in `dir` when B > 1); then each bucket
 * alone is read, sorted and filtered. At most about `perBucket` quads are in memory at a time
 * (plus the result, 16 bytes per shared record), whatever the corpus size: the merge of a
 * partitioned build over 10⁸ records does this step like the one-process build, with the same bytes.
 */
export function sharedKeyQuads(dir: string, shards: readonly ShardMeta[], rowsOf: (s: number) => Int32Array, perBucket = 1 << 22): Buffer[] {
  const total = shards.reduce((n, s) => n + s.records, 0);
  const B = Math.max(1, Math.ceil(total / perBucket));
  const buckets = Array.from({ length: B }, (_, b) => new Bucket(B === 1 ? undefined : join(dir, `audio-groups.bucket-${b}.${process.pid}.tmp`)));
  try {
    shards.forEach((shard, s) => {
      const rows = rowsOf(s);
      for (let r = 0; r < shard.records; r++) {
        const lo = rows[r * ROW_WIDTH + ROW.AUDIO_KEY_LO] ?? 0;
        const hi = rows[r * ROW_WIDTH + ROW.AUDIO_KEY_HI] ?? 0;
        if (lo !== 0 || hi !== 0) buckets[Math.min(B - 1, Math.floor(((hi + 2 ** 31) * B) / 2 ** 32))]!.add(lo, hi, s, r);
      }
    });
    const out: Buffer[] = [];
    for (const bucket of buckets) {
      const q = bucket.drain();
      const n = q.length / 4;
      const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) =>
        (q[a * 4 + 1]! - q[b * 4 + 1]!) || (q[a * 4]! - q[b * 4]!) || (q[a * 4 + 2]! - q[b * 4 + 2]!) || (q[a * 4 + 3]! - q[b * 4 + 3]!));
      const same = (i: number, j: number): boolean => j >= 0 && j < n && q[order[i]! * 4] === q[order[j]! * 4] && q[order[i]! * 4 + 1] === q[order[j]! * 4 + 1];
      const shared: number[] = [];
      for (let i = 0; i < n; i++) if (same(i, i - 1) || same(i, i + 1)) shared.push(order[i]!);
      const res = new Int32Array(shared.length * 4);
      shared.forEach((k, i) => res.set(q.subarray(k * 4, k * 4 + 4), i * 4));
      out.push(Buffer.from(res.buffer, res.byteOffset, res.byteLength));
    }
    return out;
  } finally {
    for (let b = 0; b < B && B > 1; b++) rmSync(join(dir, `audio-groups.bucket-${b}.${process.pid}.tmp`), { force: true });
  }
}
