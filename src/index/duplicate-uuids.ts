import { key64 } from '../util/hash.js';
import { ROW, ROW_WIDTH, type ShardMeta } from './format.js';
import type { ShardFiles } from './shard-access.js';
import { PER_BUCKET, forEachSharedRun, sortedKeyBuckets } from './shared-keys.js';

/**
 * Duplicate uuids across the whole corpus, found in bounded memory. A uuid is unique within the
 * corpus (docs/corpus.md); a shard builder catches repeats inside its own shard, but a repeat in
 * another shard (possibly built by another part of a partitioned build) is only visible once all
 * shards exist. A Set of 10⁸ uuids does not fit one merge process, so every kept record's uuid is
 * hashed to 64 bits and the [hash, shard, row] quads go through the same bucketed, spilled sort as
 * the audio groups (sortedKeyBuckets: about `perBucket` quads in memory at a time). Records whose
 * hashes collide are the only ones read again, and their uuid strings are compared, so a hash
 * collision never quarantines a record.
 *
 * Corpus order is shard path order, then line (shards sorted by source, rows in line order), so
 * the record at the smallest (shard, row) of a uuid is its first occurrence and every other one is
 * a duplicate — the same answer however the shards were built, in one process or by parts.
 */

/** Quads [shard, row, firstShard, firstRow], one per duplicate, sorted by (shard, row); 16 bytes per duplicate. */
export type DuplicateQuads = Int32Array;
export const DUP_WIDTH = 4;

/** The uuid of a kept record, as its bytes in the shard's string blob. */
function uuidBytes(files: ShardFiles, s: number, r: number): Buffer {
  const row = files.row(s, r);
  return files.string(s, row[ROW.UUID_OFF] ?? 0, row[ROW.UUID_LEN] ?? 0);
}

export function findDuplicateUuids(
  files: ShardFiles,
  shards: readonly ShardMeta[],
  perBucket = PER_BUCKET,
): DuplicateQuads {
  const total = shards.reduce((n, s) => n + s.records, 0);
  const dups: number[] = [];
  const buckets = sortedKeyBuckets(files.dir, 'duplicate-uuids', total, perBucket, (add) => {
    shards.forEach((shard, s) => {
      if (shard.records === 0) return;
      const rows = files.ints(s, 'rows');
      const strings = files.bytes(s, 'strings');
      for (let r = 0; r < shard.records; r++) {
        const off = rows[r * ROW_WIDTH + ROW.UUID_OFF] ?? 0;
        const [lo, hi] = key64(strings.subarray(off, off + (rows[r * ROW_WIDTH + ROW.UUID_LEN] ?? 0)));
        add(lo, hi, s, r);
      }
    });
  });
  for (const q of buckets) {
    forEachSharedRun(q, (from, to) => {
      // Same hash: group by the uuid itself. Members are in corpus order, so a uuid's first member is its first occurrence.
      const first = new Map<string, [number, number]>();
      for (let i = from; i < to; i++) {
        const s = q[i * 4 + 2]!;
        const r = q[i * 4 + 3]!;
        const uuid = uuidBytes(files, s, r).toString('latin1');
        const f = first.get(uuid);
        if (f) dups.push(s, r, f[0], f[1]);
        else first.set(uuid, [s, r]);
      }
    });
  }
  const n = dups.length / DUP_WIDTH;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => dups[a * 4]! - dups[b * 4]! || dups[a * 4 + 1]! - dups[b * 4 + 1]!,
  );
  const out = new Int32Array(dups.length);
  order.forEach((k, i) => out.set(dups.slice(k * 4, k * 4 + 4), i * 4));
  return out;
}
