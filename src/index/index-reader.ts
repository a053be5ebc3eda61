import { closeSync, openSync, readSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { LRUCache } from 'lru-cache';
import { IndexCorruptError } from '../errors.js';
import { checksum } from '../util/hash.js';
import { BLOCK_TOKENS, ROW, ROW_WIDTH, SPLIT_NAMES, type Manifest, type Section, type ShardMeta, type TaskEntry } from './format.js';
import { readManifest } from './manifest-io.js';
import { readAudioGroups } from './audio-groups.js';

const SECTION_SLOT = { rows: 0, spans: 1, lists: 2 } as const;

export type SplitIndex = 0 | 1 | 2;
export const splitIndex = (s: string): SplitIndex => (SPLIT_NAMES as readonly string[]).indexOf(s) as SplitIndex;

export interface ReaderOptions {
  /** Bytes of shard sections and token blocks kept in memory. */
  readonly cacheBytes?: number;
}

/**
 * The serving side of the index. Opening reads only the manifest (O(shards + tasks)); record
 * tables and token blocks are read positionally on first use, verified against their checksums,
 * and kept in an LRU cache bounded in bytes.
 */
export class IndexReader {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly cacheStats = { hits: 0, misses: 0 };
  private readonly cache: LRUCache<string, Int32Array | Buffer>;
  private readonly fds = new Map<number, number>();
  private readonly realDir: string;
  private groups: Int32Array | undefined;
  private readonly localTasks = new Map<number, Int32Array>();
  /** Cache keys per shard (sections, then token blocks), built once: a fresh template string per
   * lookup costs its allocation and hashing on every row, span, list and block access. */
  private readonly keys: string[][] = [];

  private constructor(dir: string, manifest: Manifest, opts: ReaderOptions) {
    this.dir = dir;
    this.manifest = manifest;
    this.realDir = realpathSync(dir);
    this.cache = new LRUCache({ maxSize: opts.cacheBytes ?? 512 << 20, sizeCalculation: (v) => Math.max(1, v.byteLength) });
    for (const s of manifest.shards) {
      if (!/^shards\/[0-9a-f]{16,64}\.bin$/.test(s.file)) throw new IndexCorruptError(join(dir, 'manifest.msgpack'), `bad shard file name ${s.file}`);
    }
  }

  static open(dir: string, opts: ReaderOptions = {}): IndexReader {
    return new IndexReader(dir, readManifest(dir), opts);
  }

  get fingerprint(): string {
    return this.manifest.fingerprint;
  }

  get tasks(): readonly TaskEntry[] {
    return this.manifest.tasks;
  }

  shard(i: number): ShardMeta {
    const s = this.manifest.shards[i];
    if (!s) throw new IndexCorruptError(this.dir, `no shard ${i}`);
    return s;
  }

  private fd(i: number): number {
    let fd = this.fds.get(i);
    if (fd === undefined) {
      const path = join(this.dir, this.shard(i).file);
      let real: string;
      try {
        real = realpathSync(path);
      } catch {
        throw new IndexCorruptError(path, 'shard file is missing');
      }
      if (!real.startsWith(this.realDir + sep)) throw new IndexCorruptError(path, 'shard file is a symlink leaving the index; refused');
      fd = openSync(real, 'r');
      this.fds.set(i, fd);
    }
    return fd;
  }

  private read(i: number, [off, len]: Section, expected: string | undefined, what: string): Buffer {
    const buf = Buffer.allocUnsafe(len);
    const n = len === 0 ? 0 : readSync(this.fd(i), buf, 0, len, off);
    const file = join(this.dir, this.shard(i).file);
    if (n !== len) throw new IndexCorruptError(file, `${what} is truncated (${n} of ${len} bytes)`);
    if (expected !== undefined && checksum(buf) !== expected) throw new IndexCorruptError(file, `${what} fails its checksum`);
    return buf;
  }

  private key(i: number, slot: number, name: string): string {
    let ks = this.keys[i];
    if (!ks) {
      ks = [];
      this.keys[i] = ks;
    }
    return (ks[slot] ??= `${i}:${name}`);
  }

  private cached<T extends Int32Array | Buffer>(key: string, load: () => T): T {
    const hit = this.cache.get(key);
    if (hit) {
      this.cacheStats.hits++;
      return hit as T;
    }
    this.cacheStats.misses++;
    const v = load();
    this.cache.set(key, v);
    return v;
  }

  private ints(i: number, name: 'rows' | 'spans' | 'lists'): Int32Array {
    return this.cached(this.key(i, SECTION_SLOT[name], name), () => {
      const s = this.shard(i);
      const b = this.read(i, s.sections[name], s.checksums[name], name);
      return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    });
  }

  rows(i: number): Int32Array {
    return this.ints(i, 'rows');
  }

  spans(i: number): Int32Array {
    return this.ints(i, 'spans');
  }

  strings(i: number): Buffer {
    return this.cached(this.key(i, 3, 'strings'), () => {
      const s = this.shard(i);
      return this.read(i, s.sections.strings, s.checksums.strings, 'strings');
    });
  }

  /** Rows of local task `local` in shard `i` that hold split `split`. */
  list(i: number, local: number, split: SplitIndex): Int32Array {
    const t = this.shard(i).tasks[local];
    if (!t) throw new IndexCorruptError(this.dir, `shard ${i} has no task ${local}`);
    const off = t.listOffsets[split];
    return this.ints(i, 'lists').subarray(off, off + t.counts[split]);
  }

  string(i: number, off: number, len: number): string {
    return this.strings(i).toString('utf8', off, off + len);
  }

  uuid(i: number, row: number): string {
    const r = this.rows(i);
    const o = row * ROW_WIDTH;
    return this.string(i, r[o + ROW.UUID_OFF] ?? 0, r[o + ROW.UUID_LEN] ?? 0);
  }

  private block(i: number, b: number): Int32Array {
    return this.cached(this.key(i, 4 + b, `b${b}`), () => {
      const s = this.shard(i);
      const start = b * BLOCK_TOKENS;
      const count = Math.min(BLOCK_TOKENS, s.tokens - start);
      const buf = this.read(i, [s.sections.tokens[0] + start * 4, count * 4], s.checksums.blocks[b], `token block ${b}`);
      return new Int32Array(buf.buffer, buf.byteOffset, count);
    });
  }

  /** Copies tokens [start, start + len) of shard `i` into `out` at `at`. */
  readTokens(i: number, start: number, len: number, out: Int32Array, at: number): void {
    let done = 0;
    while (done < len) {
      const pos = start + done;
      const b = Math.floor(pos / BLOCK_TOKENS);
      const blk = this.block(i, b);
      const from = pos - b * BLOCK_TOKENS;
      const n = Math.min(len - done, blk.length - from);
      out.set(blk.subarray(from, from + n), at + done);
      done += n;
    }
  }

  /** The global task id of a record (rows store their shard-local task index). */
  taskOf(shard: number, row: number): number {
    let map = this.localTasks.get(shard);
    if (!map) {
      const ids = new Map(this.manifest.tasks.map((t) => [t.path, t.id]));
      map = Int32Array.from(this.shard(shard).tasks.map((t) => ids.get(t.path) ?? -1));
      this.localTasks.set(shard, map);
    }
    return map[this.rows(shard)[row * ROW_WIDTH + ROW.TASK] ?? 0] ?? -1;
  }

  /** The shared-clip map (see audio-groups.ts), loaded on first use by a multiturn stream. */
  audioGroups(): Int32Array {
    this.groups ??= readAudioGroups(this.dir, this.manifest.audioGroups);
    return this.groups;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.cache.clear();
  }
}
