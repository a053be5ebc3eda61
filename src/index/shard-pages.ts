import { LRUCache } from 'lru-cache';
import { FlanError, IndexCorruptError } from '../errors.js';
import { StorageNotFile, StorageNotFound, type Storage } from '../storage/storage.js';
import { checksum, pageDigest } from '../util/hash.js';
import { PAGE_BYTES, PAGE_DIGEST_BYTES, PAGED_SECTIONS, type PagedSection, type ShardMeta } from './format.js';

/** Digests of every page of one section, back to back (the section's part of the page table). */
export function sectionDigests(buf: Uint8Array, section: PagedSection): Buffer {
  const size = PAGE_BYTES[section];
  const pages = Math.ceil(buf.byteLength / size);
  const out = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
  for (let p = 0; p < pages; p++) pageDigest(buf.subarray(p * size, (p + 1) * size)).copy(out, p * PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES);
  return out;
}

/** A shard's page table: the digests of every page of every paged section, in PAGED_SECTIONS order. */
export function pageTable(sections: Readonly<Record<PagedSection, Uint8Array>>, digestsOf = sectionDigests): Buffer {
  return Buffer.concat(PAGED_SECTIONS.map((s) => digestsOf(sections[s], s)));
}

const SLOT: Readonly<Record<PagedSection | 'pages', number>> = { tokens: 0, rows: 1, spans: 2, strings: 3, lists: 4, pages: 5 };
const SLOTS = PAGED_SECTIONS.length;
const INT_SECTIONS: ReadonlySet<PagedSection> = new Set(['tokens', 'rows', 'spans', 'lists']);

/** Slots of the front cache (a power of two), and how often a front hit refreshes the LRU (a power of two). */
const FRONT = 4096;
const REFRESH = 16;

/** A shard's verified page table. */
interface Table {
  readonly digests: Buffer;
}

/**
 * Pages of shard files, read positionally on first use, verified against their shard's page table
 * (itself verified against the manifest) and kept in an LRU cache bounded in bytes. Int32 sections
 * come back as Int32Array views, strings as bytes.
 */
export class ShardPages {
  readonly cacheStats = { hits: 0, misses: 0 };
  private readonly storage: Storage;
  private readonly shards: readonly ShardMeta[];
  private readonly cache: LRUCache<number, Int32Array | Buffer | Table>;
  /**
   * Page numbers over the whole index: section s of shard i starts at first[i * SLOTS + s], and
   * shard i's page table is page first[shards * SLOTS] + i. They are the cache keys: small
   * integers, which a Map hashes without allocating (a composite key string or double would).
   */
  private readonly first: Int32Array;
  /**
   * A direct-mapped front of the LRU (slot = key mod FRONT): a batch looks pages up thousands of
   * times (a row, spans, a list entry, tokens and a uuid per example), mostly pages it used a
   * moment ago, and an LRU lookup costs several times this array probe. It holds only pages the
   * LRU holds (an evicted page leaves it through `dispose`), so the cache's byte bound stands.
   * Hits here refresh the LRU's recency every REFRESH-th time only: a page in use is still seen
   * as recent, at a fraction of the cost.
   */
  private readonly frontKey = new Int32Array(FRONT).fill(-1);
  private readonly frontPage: (Int32Array | Buffer | Table | undefined)[] = new Array<undefined>(FRONT).fill(undefined);
  private frontHits = 0;

  constructor(storage: Storage, shards: readonly ShardMeta[], cacheBytes: number) {
    this.storage = storage;
    this.shards = shards;
    this.first = new Int32Array(shards.length * SLOTS + 1);
    let pages = 0;
    shards.forEach((s, i) => {
      PAGED_SECTIONS.forEach((name, slot) => {
        this.first[i * SLOTS + slot] = pages;
        pages += Math.ceil(s.sections[name][1] / PAGE_BYTES[name]);
      });
    });
    this.first[shards.length * SLOTS] = pages;
    this.cache = new LRUCache({
      maxSize: cacheBytes,
      sizeCalculation: (v) => Math.max(1, 'digests' in v ? v.digests.byteLength : v.byteLength),
      dispose: (_v, key) => {
        const at = key & (FRONT - 1);
        if (this.frontKey[at] === key) {
          this.frontKey[at] = -1;
          this.frontPage[at] = undefined;
        }
      },
    });
  }

  /** Page `p` of an int32 section of shard `i`. */
  ints(i: number, section: Exclude<PagedSection, 'strings'>, p: number): Int32Array {
    return this.page(i, section, p) as Int32Array;
  }

  /** Page `p` of the strings section of shard `i`. */
  bytes(i: number, p: number): Buffer {
    return this.page(i, 'strings', p) as Buffer;
  }

  private page(i: number, section: PagedSection | 'pages', p: number): Int32Array | Buffer | Table {
    const slot = SLOT[section];
    let key: number;
    if (slot === SLOTS) key = (this.first[this.shards.length * SLOTS] ?? 0) + i;
    else {
      const at = i * SLOTS + slot;
      const first = this.first[at] ?? 0;
      // A page past its section would alias the next section's key: refuse it before any lookup.
      if (!(p >= 0 && p < (this.first[at + 1] ?? 0) - first)) throw new IndexCorruptError(this.file(i), `${section} page ${p} is past the section's end`);
      key = first + p;
    }
    const at = key & (FRONT - 1);
    if (this.frontKey[at] === key) {
      this.cacheStats.hits++;
      if ((++this.frontHits & (REFRESH - 1)) === 0) this.cache.get(key);
      return this.frontPage[at]!;
    }
    let v = this.cache.get(key);
    if (v) this.cacheStats.hits++;
    else {
      this.cacheStats.misses++;
      v = section === 'pages' ? this.loadTable(i) : this.load(i, section, p);
      this.cache.set(key, v);
      // A page larger than the whole cache is not kept by the LRU: keep it out of the front too.
      if (!this.cache.has(key)) return v;
    }
    this.frontKey[at] = key;
    this.frontPage[at] = v;
    return v;
  }

  private shard(i: number): ShardMeta {
    const s = this.shards[i];
    if (!s) throw new IndexCorruptError(this.storage.location, `no shard ${i}`);
    return s;
  }

  private file(i: number): string {
    return this.storage.describe(this.shard(i).file);
  }

  /** A storage failure on shard i as the index error naming it (missing, not a regular file, unreadable). */
  private fault(i: number, err: unknown, what: string): FlanError {
    if (err instanceof FlanError) return err;
    if (err instanceof StorageNotFound) return new IndexCorruptError(this.file(i), 'shard file is missing');
    if (err instanceof StorageNotFile) return new IndexCorruptError(this.file(i), 'shard file is not a regular file');
    return new IndexCorruptError(this.file(i), `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }

  /**
   * Every shard file of the manifest is there, a regular file inside the index, of the size the
   * manifest gives: checked once when a server starts, so a damaged index is refused before it
   * says SERVING instead of failing streams with DATA_LOSS later. Contents are still verified
   * page by page as they are read.
   */
  verifyFiles(): void {
    this.shards.forEach((s, i) => {
      let size: number;
      try {
        size = this.storage.size(s.file);
      } catch (err) {
        throw this.fault(i, err, 'shard file');
      }
      if (size !== s.bytes) throw new IndexCorruptError(this.file(i), `shard file has ${size} bytes; the manifest says ${s.bytes}`);
    });
  }

  private readAt(i: number, off: number, len: number, what: string): Buffer {
    let buf: Buffer;
    try {
      buf = this.storage.readRange(this.shard(i).file, off, len, this.shard(i).bytes);
    } catch (err) {
      throw this.fault(i, err, what);
    }
    if (buf.length !== len) throw new IndexCorruptError(this.file(i), `${what} is truncated (${buf.length} of ${len} bytes)`);
    return buf;
  }

  private loadTable(i: number): Table {
    const s = this.shard(i);
    const [off, len] = s.sections.pages;
    const pages = (this.first[(i + 1) * SLOTS] ?? 0) - (this.first[i * SLOTS] ?? 0);
    if (len !== pages * PAGE_DIGEST_BYTES) throw new IndexCorruptError(this.file(i), `page table has ${len} bytes for ${pages} pages`);
    const digests = this.readAt(i, off, len, 'page table');
    if (checksum(digests) !== s.checksums.pages) throw new IndexCorruptError(this.file(i), 'page table fails its checksum');
    return { digests };
  }

  private load(i: number, section: PagedSection, p: number): Int32Array | Buffer {
    const [off, len] = this.shard(i).sections[section];
    const size = PAGE_BYTES[section];
    const start = p * size;
    const what = `${section} page ${p}`;
    const buf = this.readAt(i, off + start, Math.min(size, len - start), what);
    const table = this.page(i, 'pages', 0) as Table;
    const at = ((this.first[i * SLOTS + SLOT[section]] ?? 0) - (this.first[i * SLOTS] ?? 0) + p) * PAGE_DIGEST_BYTES;
    if (pageDigest(buf).compare(table.digests, at, at + PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES) !== 0) throw new IndexCorruptError(this.file(i), `${what} fails its checksum`);
    return INT_SECTIONS.has(section) ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) : buf;
  }

  close(): void {
    this.cache.clear();
    this.frontKey.fill(-1);
    this.frontPage.fill(undefined);
  }
}
