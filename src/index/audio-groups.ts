import { createHash } from 'node:crypto';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { IndexCorruptError } from '../errors.js';
import { StorageNotFound, type Storage } from '../storage/storage.js';
import { checksum } from '../util/hash.js';
import { MANIFEST_FILE, type AudioGroupsMeta, type ShardMeta } from './format.js';
import { sharedKeyQuads } from './shared-keys.js';
import { writeFileAtomic } from './manifest-io.js';

/**
 * The audio → examples map multi-turn packing needs: every record whose first input clip is
 * shared with at least one other record, as int32 quads [keyLo, keyHi, shard, row] sorted by
 * key, then shard, then row. Built at index time, so the server never scans records for it.
 */
/**
 * Named by content, like shard files: a run interrupted between this file and its manifest must
 * not replace the groups file that the previous, still valid manifest names.
 */
export const AUDIO_GROUPS_NAME = /^audio-groups\.[0-9a-f]{16}\.bin$/;
export const QUAD = 4;
const STAGED = 'audio-groups.staged.tmp';

export function writeAudioGroups(
  indexDir: string,
  shards: readonly ShardMeta[],
  rowsOf: (s: number) => Int32Array,
  perBucket?: number,
  dropped?: (s: number, r: number) => boolean,
): AudioGroupsMeta {
  // Written as the buckets are sorted (never all in memory), then named by the checksum() of the
  // whole, taken on the way. A staged file left by a crash ends in .tmp: the next build removes it.
  const hash = createHash('sha1');
  let bytes = 0;
  const staged = join(indexDir, STAGED);
  writeFileAtomic(
    staged,
    (function* () {
      for (const p of sharedKeyQuads(indexDir, shards, rowsOf, perBucket, dropped)) {
        hash.update(p);
        bytes += p.length;
        yield p;
      }
    })(),
  );
  const sum = hash.digest('hex').slice(0, 16);
  const file = `audio-groups.${sum}.bin`;
  renameSync(staged, join(indexDir, file));
  return { file, entries: bytes / (QUAD * 4), checksum: sum };
}

export function readAudioGroups(storage: Storage, meta: AudioGroupsMeta): Int32Array {
  const want = groupsBytes(storage, meta);
  let buf: Buffer;
  try {
    buf = storage.readRange(meta.file, 0, want, want);
  } catch (err) {
    throw groupsFault(storage, meta, err);
  }
  return checkedGroups(storage, meta, buf);
}

/** The same, read without blocking the thread (what a stream planned strictly waits for). */
export async function readAudioGroupsAsync(storage: Storage, meta: AudioGroupsMeta): Promise<Int32Array> {
  const want = groupsBytes(storage, meta);
  let buf: Buffer;
  try {
    buf = want === 0 ? Buffer.alloc(0) : await storage.readRangeAsync(meta.file, 0, want);
  } catch (err) {
    throw groupsFault(storage, meta, err);
  }
  return checkedGroups(storage, meta, buf);
}

function groupsBytes(storage: Storage, meta: AudioGroupsMeta): number {
  if (!AUDIO_GROUPS_NAME.test(meta.file))
    throw new IndexCorruptError(storage.describe(MANIFEST_FILE), `bad audio groups file name ${meta.file}`);
  return meta.entries * QUAD * 4;
}

function groupsFault(storage: Storage, meta: AudioGroupsMeta, err: unknown): unknown {
  return err instanceof StorageNotFound
    ? new IndexCorruptError(storage.describe(meta.file), 'audio groups file is missing')
    : err;
}

function checkedGroups(storage: Storage, meta: AudioGroupsMeta, buf: Buffer): Int32Array {
  const path = storage.describe(meta.file);
  if (buf.length !== meta.entries * QUAD * 4) throw new IndexCorruptError(path, 'audio groups file is truncated');
  if (checksum(buf) !== meta.checksum) throw new IndexCorruptError(path, 'audio groups file fails its checksum');
  return new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

/** The shared-clip map asked for inside `strictly` before it was loaded (see LoadedAudioGroups). */
export class AudioGroupsMiss extends Error {
  constructor() {
    super('the audio groups file is not loaded');
  }
}

/**
 * An open index's shared-clip map, loaded on first use by a multiturn stream: on the spot, or,
 * where nothing may be read on the spot (serving), refused with an AudioGroupsMiss until `load`.
 */
export class LoadedAudioGroups {
  private groups: Int32Array | undefined;
  private loading: Promise<Int32Array> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly meta: AudioGroupsMeta,
  ) {}

  get(strict: boolean): Int32Array {
    if (!this.groups && strict) throw new AudioGroupsMiss();
    this.groups ??= readAudioGroups(this.storage, this.meta);
    return this.groups;
  }

  /** Loads the map without blocking the thread (what an AudioGroupsMiss waits for). */
  async load(): Promise<void> {
    this.loading ??= readAudioGroupsAsync(this.storage, this.meta).finally(() => {
      this.loading = undefined;
    });
    const groups = await this.loading;
    this.groups ??= groups;
  }
}

/** The [from, to) quad range of records sharing the clip key (lo, hi). */
export function groupRange(groups: Int32Array, lo: number, hi: number): [number, number] {
  const n = groups.length / QUAD;
  const less = (i: number): boolean => {
    const h = groups[i * QUAD + 1] ?? 0;
    return h < hi || (h === hi && (groups[i * QUAD] ?? 0) < lo);
  };
  let a = 0;
  let b = n;
  while (a < b) {
    const m = (a + b) >> 1;
    if (less(m)) a = m + 1;
    else b = m;
  }
  let end = a;
  while (end < n && groups[end * QUAD] === lo && groups[end * QUAD + 1] === hi) end++;
  return [a, end];
}
