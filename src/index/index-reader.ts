import { IndexCorruptError } from '../errors.js';
import {
  LIST_PAGE_ENTRIES,
  ROW,
  ROW_WIDTH,
  SPAN_WIDTH,
  SPLIT_NAMES,
  type Manifest,
  type PagedSection,
  type ShardMeta,
  type ShardTask,
  type TaskEntry,
} from './format.js';
import { openStorage } from '../storage/open-storage.js';
import type { Storage } from '../storage/storage.js';
import type { S3Settings } from '../storage/s3-location.js';
import { readManifestFrom } from './manifest-io.js';
import { LoadedAudioGroups } from './audio-groups.js';
import { datasetTable, type DatasetEntry } from './datasets.js';
import { Exclusions, readExclusions } from './exclusions.js';
import { copyTokens, intRange, stringAt } from './page-ranges.js';
import { RecordPages, type RecordRef } from './record-pages.js';
import type { PageRef } from './page-keys.js';
import type { HoldKind, Residency } from './page-pins.js';
import { sectionPages } from './page-table.js';
import { DEFAULT_READ_AHEAD, ShardPages, type ReadAhead } from './shard-pages.js';

export { AudioGroupsMiss } from './audio-groups.js';

export type SplitIndex = 0 | 1 | 2;
export const splitIndex = (s: string): SplitIndex => (SPLIT_NAMES as readonly string[]).indexOf(s) as SplitIndex;

export interface ReaderOptions {
  /** Bytes of shard pages kept in memory. */
  readonly cacheBytes?: number;
  /** Client settings when the index is at an s3:// location. */
  readonly s3?: S3Settings;
  /** Reading ahead of planned steps: bytes held for them and reads in flight at once. */
  readonly readAhead?: ReadAhead;
}

export type { RecordRef } from './record-pages.js';

/**
 * The serving side of the index. Opening reads only the manifest (O(shards + tasks)); record
 * tables and tokens are read page by page on first use (see ShardPages), so the cost of touching a
 * record does not grow with its shard. Accessors take a record's position, never a whole section.
 */
export class IndexReader {
  /** The index location: a directory or an s3:// URL. */
  readonly dir: string;
  readonly storage: Storage;
  readonly manifest: Manifest;
  private readonly pages: ShardPages;
  private readonly groups: LoadedAudioGroups;
  private datasetMap: ReadonlyMap<string, DatasetEntry> | undefined;
  private readonly localTasks = new Map<number, Int32Array>();
  private readonly records: RecordPages;
  /** Shard i's file as errors name it. */
  private readonly describe = (i: number): string => this.storage.describe(this.shard(i).file);
  /** List entries not served (duplicate uuids; see exclusions.ts), undefined when there are none. */
  private readonly exclusions: Exclusions | undefined;

  private constructor(dir: string, storage: Storage, manifest: Manifest, opts: ReaderOptions) {
    this.dir = dir;
    this.storage = storage;
    this.manifest = manifest;
    for (const s of manifest.shards) {
      if (!/^shards\/[0-9a-f]{16,64}\.bin$/.test(s.file))
        throw new IndexCorruptError(storage.describe('manifest.msgpack'), `bad shard file name ${s.file}`);
    }
    this.pages = new ShardPages(
      storage,
      manifest.shards,
      opts.cacheBytes ?? 512 << 20,
      opts.readAhead ?? DEFAULT_READ_AHEAD,
    );
    this.exclusions = readExclusions(storage, manifest.exclusions);
    this.records = new RecordPages(this.pages, this);
    this.groups = new LoadedAudioGroups(storage, manifest.audioGroups);
  }

  static open(dir: string, opts: ReaderOptions = {}): IndexReader {
    const storage = openStorage(dir, opts.s3);
    try {
      return new IndexReader(dir, storage, readManifestFrom(storage), opts);
    } catch (err) {
      storage.close();
      throw err;
    }
  }

  /** Checks that every shard file is present, regular and of its manifest size (see ShardPages.verifyFiles). */
  verifyFiles(): void {
    this.pages.verifyFiles();
  }

  get fingerprint(): string {
    return this.manifest.fingerprint;
  }

  get tasks(): readonly TaskEntry[] {
    return this.manifest.tasks;
  }

  /** The source datasets (NN_Dataset folders) with their shards and per-task counts. */
  get datasets(): ReadonlyMap<string, DatasetEntry> {
    this.datasetMap ??= datasetTable(this.manifest, (s, local, split) => this.listCount(s, local, split));
    return this.datasetMap;
  }

  /** Page lookups served from memory, pages read synchronously (misses), pages read ahead asynchronously (prefetched). */
  get cacheStats(): { readonly hits: number; readonly misses: number; readonly prefetched: number } {
    return this.pages.cacheStats;
  }

  /** Bytes of pages held for planned steps not built yet (bounded by `index.prefetch_bytes`). */
  get prefetchHeld(): number {
    return this.pages.prefetchHeld;
  }

  /**
   * Makes pages resident and holds them until released, reading the missing ones asynchronously
   * (see ShardPages.prefetch); `kind` `miss`: a page planning missed, held without waiting for room.
   */
  prefetch(pages: readonly PageRef[], kind: HoldKind = 'batch'): Promise<Residency> {
    return this.pages.prefetch(pages, kind);
  }

  /**
   * Holds every page building a batch of these records reads (see RecordPages.residentFor),
   * with `audioIds` the ids of their audio spans (what an example of a generation evaluation
   * names). Nothing is read synchronously. Release after building.
   */
  residentFor(records: readonly RecordRef[], audioIds = false): Promise<Residency> {
    return this.records.residentFor(records, audioIds);
  }

  /** Reads ahead and holds, within planning's share of `index.prefetch_bytes`, what planning will likely read (see ShardPages.readAhead). */
  readAhead(pages: readonly PageRef[]): Promise<Residency> {
    return this.pages.readAhead(pages);
  }

  /** Runs `fn` where a page not in memory is a PageMiss instead of a read on the spot (see ShardPages.strictly). */
  strictly<T>(fn: () => T): T {
    return this.pages.strictly(fn);
  }

  shard(i: number): ShardMeta {
    const s = this.manifest.shards[i];
    if (!s) throw new IndexCorruptError(this.dir, `no shard ${i}`);
    return s;
  }

  /** Int32 entries [start, start + n) of a section (see `intRange` in page-ranges.ts). */
  private intRange(
    i: number,
    section: Exclude<PagedSection, 'strings'>,
    start: number,
    n: number,
    into?: Int32Array,
  ): Int32Array {
    return intRange(this.pages, this.describe, i, section, start, n, into);
  }

  /** The record's row fields (see ROW). */
  row(i: number, row: number): Int32Array {
    return this.intRange(i, 'rows', row * ROW_WIDTH, ROW_WIDTH);
  }

  /** Audio spans [first, first + count) of shard `i`, SPAN_WIDTH entries each (a record's spans). */
  spans(i: number, first: number, count: number): Int32Array {
    return this.intRange(i, 'spans', first * SPAN_WIDTH, count * SPAN_WIDTH);
  }

  /** Page `p` of shard `i`'s columns (COLUMN_ROWS_PER_PAGE records of COLUMN_WIDTH each; the last may hold fewer). */
  columnPage(i: number, p: number): Int32Array {
    return this.pages.ints(i, 'columns', p);
  }

  private task(i: number, local: number): ShardTask {
    const t = this.shard(i).tasks[local];
    if (!t) throw new IndexCorruptError(this.dir, `shard ${i} has no task ${local}`);
    return t;
  }

  /**
   * Rows of local task `local` in shard `i` that hold split `split`, all of them (for scans),
   * without the excluded ones (see exclusions.ts).
   */
  list(i: number, local: number, split: SplitIndex): Int32Array {
    const t = this.task(i, local);
    const all = this.intRange(i, 'lists', t.listOffsets[split], t.counts[split]);
    const skip = this.exclusions?.positions(i, local, split);
    if (!skip) return all;
    const out = new Int32Array(all.length - skip.length);
    for (let k = 0, j = 0, o = 0; k < all.length; k++) {
      if (skip[j] === k) j++;
      else out[o++] = all[k]!;
    }
    return out;
  }

  /** Entries of that list (the excluded ones left out). */
  listCount(i: number, local: number, split: SplitIndex): number {
    return this.task(i, local).counts[split] - (this.exclusions?.positions(i, local, split)?.length ?? 0);
  }

  /** Entry `k` of that list (the excluded ones left out); undefined past its end. */
  listAt(i: number, local: number, split: SplitIndex, k: number): number | undefined {
    const t = this.task(i, local);
    const skip = this.exclusions?.positions(i, local, split);
    if (!(k >= 0 && k < t.counts[split] - (skip?.length ?? 0))) return undefined;
    return this.listEntry(i, t.listOffsets[split] + (skip ? Exclusions.rawPosition(skip, k) : k));
  }

  /** Entry `at` of shard `i`'s lists section as stored (no task, split or exclusion applied): for callers that resolved those once. */
  listEntry(i: number, at: number): number | undefined {
    const p = Math.floor(at / LIST_PAGE_ENTRIES);
    return this.pages.ints(i, 'lists', p)[at - p * LIST_PAGE_ENTRIES];
  }

  /** Whether a record of a shard file is excluded from the index (a duplicate uuid). */
  isExcluded(i: number, row: number): boolean {
    return this.exclusions?.has(i, row) ?? false;
  }

  /** A served section of shard `i` whole, verified page by page (inspection and tests). */
  section(i: number, section: PagedSection): Buffer {
    const pages = sectionPages(this.shard(i), section);
    return Buffer.concat(
      Array.from({ length: pages }, (_, p) => {
        if (section === 'strings') return this.pages.bytes(i, p);
        const v = this.pages.ints(i, section, p);
        return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      }),
    );
  }

  string(i: number, off: number, len: number): string {
    return stringAt(this.pages, i, off, len);
  }

  uuid(i: number, row: number): string {
    const r = this.row(i, row);
    return this.string(i, r[ROW.UUID_OFF] ?? 0, r[ROW.UUID_LEN] ?? 0);
  }

  /** Copies tokens [start, start + len) of shard `i` into `out` at `at`. */
  readTokens(i: number, start: number, len: number, out: Int32Array, at: number): void {
    copyTokens(this.pages, this.describe, i, start, len, out, at);
  }

  /**
   * Tokens [start, start + len) of shard `i` to read, not keep: a view into their cached page when
   * they lie in one (no copy; pages are never written), else copied into `into` (≥ len long). A
   * clip served under another audio view is re-arranged from this, so it is not copied twice.
   */
  tokenView(i: number, start: number, len: number, into: Int32Array): Int32Array {
    return this.intRange(i, 'tokens', start, len, into);
  }

  /** The global task id of a record (rows store their shard-local task index). */
  taskOf(shard: number, row: number): number {
    let map = this.localTasks.get(shard);
    if (!map) {
      const ids = new Map(this.manifest.tasks.map((t) => [t.path, t.id]));
      map = Int32Array.from(this.shard(shard).tasks.map((t) => ids.get(t.path) ?? -1));
      this.localTasks.set(shard, map);
    }
    return map[this.row(shard, row)[ROW.TASK] ?? 0] ?? -1;
  }

  /**
   * The shared-clip map (see audio-groups.ts), loaded on first use by a multiturn stream: on the
   * spot, or inside `strictly` (serving) refused with an AudioGroupsMiss until `loadAudioGroups`.
   */
  audioGroups(): Int32Array {
    return this.groups.get(this.pages.isStrict);
  }

  /** Loads the shared-clip map without blocking the thread (what an AudioGroupsMiss waits for). */
  loadAudioGroups(): Promise<void> {
    return this.groups.load();
  }

  close(): void {
    this.pages.close();
    this.storage.close();
  }
}
