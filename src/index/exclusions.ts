import { join } from 'node:path';
import { IndexCorruptError } from '../errors.js';
import { StorageNotFound, type Storage } from '../storage/storage.js';
import { checksum } from '../util/hash.js';
import {
  MANIFEST_FILE,
  ROW,
  ROW_WIDTH,
  SPLIT_BIT,
  SPLIT_NAMES,
  type ExclusionsMeta,
  type ShardMeta,
} from './format.js';
import { writeFileAtomic } from './manifest-io.js';

/**
 * Records a shard file holds but the index does not serve: duplicate uuids found across shards
 * once every shard exists (see duplicate-uuids.ts). A shard file is named by its content and
 * reused by incremental and partitioned builds, so it is never rewritten for a duplicate that
 * another shard's record makes; the index lists the excluded entries of the shards' per-task row
 * lists instead, as int32 quints [shard, local task, split, position in that list, row], sorted,
 * in `duplicates.<checksum>.bin`. IndexReader reads the lists through them (a list's excluded
 * entries are skipped and its count shrinks), so every table built on the lists (task runs,
 * permutations, evaluation items, guards, the dataset table) never meets an excluded record; the
 * manifest's task counts and runs are net of them, and the audio groups leave them out.
 */
export const DUPLICATES_NAME = /^duplicates\.[0-9a-f]{16}\.bin$/;
export const QUINT = 5;

export const NO_EXCLUSIONS: ExclusionsMeta = { file: '', records: 0, entries: 0, checksum: '' };

/**
 * The list entries of shard `s` whose rows are `dropped` (ascending), as quints sorted by local
 * task, split and position. A shard's lists hold each task's rows in ascending order, so each
 * position is found by binary search.
 */
export function listEntries(
  shard: ShardMeta,
  s: number,
  rows: Int32Array,
  lists: Int32Array,
  dropped: readonly number[],
): number[] {
  const out: number[][] = [];
  for (const r of dropped) {
    const local = rows[r * ROW_WIDTH + ROW.TASK] ?? 0;
    const splits = rows[r * ROW_WIDTH + ROW.SPLITS] ?? 0;
    const t = shard.tasks[local]!;
    SPLIT_NAMES.forEach((name, split) => {
      if (!(splits & SPLIT_BIT[name])) return;
      const from = t.listOffsets[split] ?? 0;
      let a = from;
      let b = from + (t.counts[split] ?? 0);
      while (a < b) {
        const m = (a + b) >> 1;
        if ((lists[m] ?? 0) < r) a = m + 1;
        else b = m;
      }
      if (lists[a] !== r)
        throw new IndexCorruptError(shard.file, `row ${r} is not in its task's ${name} list; rebuild the index`);
      out.push([s, local, split, a - from, r]);
    });
  }
  out.sort((x, y) => x[1]! - y[1]! || x[2]! - y[2]! || x[3]! - y[3]!);
  return out.flat();
}

export function writeExclusions(indexDir: string, quints: Int32Array, records: number): ExclusionsMeta {
  if (quints.length === 0) return NO_EXCLUSIONS;
  const bytes = Buffer.from(quints.buffer, quints.byteOffset, quints.byteLength);
  const sum = checksum(bytes);
  const file = `duplicates.${sum}.bin`;
  writeFileAtomic(join(indexDir, file), bytes);
  return { file, records, entries: quints.length / QUINT, checksum: sum };
}

/** The excluded entries of an index, looked up by list and by record; O(excluded) memory. */
export class Exclusions {
  private readonly byList = new Map<string, Int32Array>();
  private readonly byShard = new Map<number, Set<number>>();

  constructor(quints: Int32Array) {
    for (let i = 0; i < quints.length;) {
      const [s, local, split] = [quints[i]!, quints[i + 1]!, quints[i + 2]!];
      let j = i;
      while (j < quints.length && quints[j] === s && quints[j + 1] === local && quints[j + 2] === split) j += QUINT;
      const positions = new Int32Array((j - i) / QUINT);
      for (let k = 0; k < positions.length; k++) {
        positions[k] = quints[i + k * QUINT + 3]!;
        let rows = this.byShard.get(s);
        if (!rows) this.byShard.set(s, (rows = new Set()));
        rows.add(quints[i + k * QUINT + 4]!);
      }
      this.byList.set(`${s}:${local}:${split}`, positions);
      i = j;
    }
  }

  /** Excluded positions of one list, ascending (undefined: none). */
  positions(shard: number, local: number, split: number): Int32Array | undefined {
    return this.byList.get(`${shard}:${local}:${split}`);
  }

  has(shard: number, row: number): boolean {
    return this.byShard.get(shard)?.has(row) ?? false;
  }

  /**
   * The list position of the k-th entry that is not excluded: k plus the excluded positions at or
   * before it. With skipped[j] − j non-decreasing, that count is found by binary search.
   */
  static rawPosition(skipped: Int32Array, k: number): number {
    let a = 0;
    let b = skipped.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if ((skipped[m] ?? 0) - m <= k) a = m + 1;
      else b = m;
    }
    return k + a;
  }
}

export function readExclusions(storage: Storage, meta: ExclusionsMeta | undefined): Exclusions | undefined {
  if (!meta || meta.entries === 0) return undefined;
  if (!DUPLICATES_NAME.test(meta.file))
    throw new IndexCorruptError(storage.describe(MANIFEST_FILE), `bad duplicates file name ${meta.file}`);
  const want = meta.entries * QUINT * 4;
  let buf: Buffer;
  try {
    buf = storage.readRange(meta.file, 0, want, want);
  } catch (err) {
    if (err instanceof StorageNotFound)
      throw new IndexCorruptError(storage.describe(meta.file), 'duplicates file is missing; rebuild the index');
    throw err;
  }
  if (buf.length !== want || checksum(buf) !== meta.checksum)
    throw new IndexCorruptError(
      storage.describe(meta.file),
      'duplicates file is truncated or fails its checksum; rebuild the index',
    );
  // Aligned copy: a Buffer from a pool may start at an offset that is not a multiple of 4.
  return new Exclusions(new Int32Array(Uint8Array.from(buf).buffer));
}
