import { LRUCache } from 'lru-cache';
import { FlanError, IndexCorruptError } from '../errors.js';
import { StorageNotFile, StorageNotFound, type Storage } from '../storage/storage.js';
import { checksum, pageDigest } from '../util/hash.js';
import {
  PAGE_BYTES,
  PAGE_DIGEST_BYTES,
  PAGE_TOKENS,
  PAGED_SECTIONS,
  type PagedSection,
  type ShardMeta,
} from './format.js';
import { ByteBudget, Slots } from './read-budget.js';
import { decodeTokenPage } from './token-pages.js';

/** Digests of every page of one section, back to back (the section's part of the page table). */
export function sectionDigests(buf: Uint8Array, section: PagedSection): Buffer {
  const size = PAGE_BYTES[section];
  const pages = Math.ceil(buf.byteLength / size);
  const out = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
  for (let p = 0; p < pages; p++)
    pageDigest(buf.subarray(p * size, (p + 1) * size)).copy(out, p * PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES);
  return out;
}

/** Pages of a section of a shard: token pages hold PAGE_TOKENS tokens whatever their stored size. */
export function sectionPages(s: ShardMeta, section: PagedSection): number {
  return section === 'tokens'
    ? Math.ceil(s.tokens / PAGE_TOKENS)
    : Math.ceil(s.sections[section][1] / PAGE_BYTES[section]);
}

const SLOT: Readonly<Record<PagedSection | 'pages', number>> = {
  tokens: 0,
  rows: 1,
  spans: 2,
  strings: 3,
  lists: 4,
  pages: 5,
};
const SLOTS = PAGED_SECTIONS.length;
const INT_SECTIONS: ReadonlySet<PagedSection> = new Set(['tokens', 'rows', 'spans', 'lists']);

/**
 * A verified page as served: token pages decoded from their stored form (token-pages.ts), the
 * other int32 sections as views, strings as bytes. `tokens` is the page's token count.
 */
export function decodePage(
  buf: Buffer,
  section: PagedSection,
  tokens: number,
  file: string,
  what: string,
): Int32Array | Buffer {
  if (section === 'tokens') return decodeTokenPage(buf, tokens, file, what);
  return INT_SECTIONS.has(section) ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) : buf;
}

/** Slots of the front cache (a power of two), and how often a front hit refreshes the LRU (a power of two). */
const FRONT = 4096;
const REFRESH = 16;

/** A shard's verified page table, and where each stored token page starts in the tokens section (one more entry: the end). */
interface Table {
  readonly digests: Buffer;
  readonly tokenStarts: Float64Array;
}
type Page = Int32Array | Buffer | Table;

/** One page of a paged section of a shard: what a planned step asks to have resident. */
export interface PageRef {
  readonly shard: number;
  readonly section: PagedSection;
  readonly page: number;
}

/** Pages held in memory for a planned step until `release` (after its batch is built). */
export interface Residency {
  /** Bytes of the pages this residency was the first to hold (what it counts against `index.prefetch_bytes`). */
  readonly bytes: number;
  /** Pages it had to read (the others were resident already). */
  readonly read: number;
  release(): void;
}

/** How pages are read ahead of a planned step (config `index.prefetch_bytes`, `index.read_concurrency`). */
export interface ReadAhead {
  readonly prefetchBytes: number;
  readonly readConcurrency: number;
}
export const DEFAULT_READ_AHEAD: ReadAhead = { prefetchBytes: 64 << 20, readConcurrency: 16 };

/**
 * Pages of shard files, verified against their shard's page table (itself verified against the
 * manifest) and kept in an LRU cache bounded in bytes. Int32 sections come back as Int32Array
 * views, strings as bytes. Two ways in: `prefetch` reads a planned step's pages asynchronously
 * (concurrent reads, each page read once however many steps ask for it) and pins them until the
 * step is built, so building finds every page in memory; a page asked for synchronously that is
 * neither cached nor pinned is read positionally on the spot (opening, tools, unplanned reads).
 */
export class ShardPages {
  /** misses: pages read synchronously; prefetched: pages read asynchronously by `prefetch`. */
  readonly cacheStats = { hits: 0, misses: 0, prefetched: 0 };
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
  /** Pages held for planned steps (by key, with how many residencies hold each), besides the LRU. */
  private readonly pinned = new Map<number, { page: Page; pins: number; bytes: number }>();
  /** Asynchronous reads under way, by key: a page two steps ask for is read once. */
  private readonly inflight = new Map<number, Promise<Page>>();
  private readonly budget: ByteBudget;
  private readonly slots: Slots;

  constructor(
    storage: Storage,
    shards: readonly ShardMeta[],
    cacheBytes: number,
    ahead: ReadAhead = DEFAULT_READ_AHEAD,
  ) {
    this.storage = storage;
    this.shards = shards;
    this.budget = new ByteBudget(ahead.prefetchBytes);
    this.slots = new Slots(ahead.readConcurrency);
    this.first = new Int32Array(shards.length * SLOTS + 1);
    let pages = 0;
    shards.forEach((s, i) => {
      PAGED_SECTIONS.forEach((name, slot) => {
        this.first[i * SLOTS + slot] = pages;
        pages += sectionPages(s, name);
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

  /** The cache key of a page (see `first`); a page past its section is refused, since it would alias the next section's key. */
  private key(i: number, section: PagedSection | 'pages', p: number): number {
    const slot = SLOT[section];
    if (slot === SLOTS) return (this.first[this.shards.length * SLOTS] ?? 0) + i;
    const at = i * SLOTS + slot;
    const first = this.first[at] ?? 0;
    if (!(p >= 0 && p < (this.first[at + 1] ?? 0) - first))
      throw new IndexCorruptError(this.file(i), `${section} page ${p} is past the section's end`);
    return first + p;
  }

  /** Bytes of a page as held in memory (the last page of a section may be shorter; token pages are held decoded, as int32). */
  private pageBytes(i: number, section: PagedSection, p: number): number {
    if (section === 'tokens') return 4 * Math.min(PAGE_TOKENS, this.shard(i).tokens - p * PAGE_TOKENS);
    const len = this.shard(i).sections[section][1];
    return Math.min(PAGE_BYTES[section], len - p * PAGE_BYTES[section]);
  }

  private page(i: number, section: PagedSection | 'pages', p: number): Int32Array | Buffer | Table {
    const key = this.key(i, section, p);
    const at = key & (FRONT - 1);
    if (this.frontKey[at] === key) {
      this.cacheStats.hits++;
      if ((++this.frontHits & (REFRESH - 1)) === 0) this.cache.get(key);
      return this.frontPage[at]!;
    }
    let v = this.cache.get(key);
    if (v) this.cacheStats.hits++;
    else {
      // A held page the LRU let go is served from where it is held, and kept out of the front
      // (which holds only what the LRU holds).
      const pin = this.pinned.get(key);
      if (pin) {
        this.cacheStats.hits++;
        return pin.page;
      }
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
    return new IndexCorruptError(
      this.file(i),
      `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
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
      if (size !== s.bytes)
        throw new IndexCorruptError(this.file(i), `shard file has ${size} bytes; the manifest says ${s.bytes}`);
    });
  }

  private readAt(i: number, off: number, len: number, what: string): Buffer {
    let buf: Buffer;
    try {
      buf = this.storage.readRange(this.shard(i).file, off, len, this.shard(i).bytes);
    } catch (err) {
      throw this.fault(i, err, what);
    }
    if (buf.length !== len)
      throw new IndexCorruptError(this.file(i), `${what} is truncated (${buf.length} of ${len} bytes)`);
    return buf;
  }

  private loadTable(i: number): Table {
    const [off, len] = this.tableRange(i);
    return this.checkedTable(i, this.readAt(i, off, len, 'page table'));
  }

  /** Where shard i's page table is, checked against its page count before anything is read. */
  private tableRange(i: number): readonly [number, number] {
    const [off, len] = this.shard(i).sections.pages;
    const pages = (this.first[(i + 1) * SLOTS] ?? 0) - (this.first[i * SLOTS] ?? 0);
    const tokenPages = sectionPages(this.shard(i), 'tokens');
    if (len !== pages * PAGE_DIGEST_BYTES + tokenPages * 4)
      throw new IndexCorruptError(this.file(i), `page table has ${len} bytes for ${pages} pages`);
    return [off, len];
  }

  /** The page table checked against the manifest; the token pages' stored lengths become their offsets. */
  private checkedTable(i: number, table: Buffer): Table {
    const s = this.shard(i);
    if (checksum(table) !== s.checksums.pages) {
      this.storage.forget?.(s.file);
      throw new IndexCorruptError(this.file(i), 'page table fails its checksum');
    }
    const tokenPages = sectionPages(s, 'tokens');
    const digests = table.subarray(0, table.length - tokenPages * 4);
    const tokenStarts = new Float64Array(tokenPages + 1);
    for (let p = 0, at = digests.length; p < tokenPages; p++, at += 4)
      tokenStarts[p + 1] = tokenStarts[p]! + table.readUInt32LE(at);
    if (tokenStarts[tokenPages] !== s.sections.tokens[1])
      throw new IndexCorruptError(
        this.file(i),
        `token pages add up to ${tokenStarts[tokenPages]} bytes; the tokens section has ${s.sections.tokens[1]}`,
      );
    return { digests, tokenStarts };
  }

  /** Where page p is stored: [offset in the file, bytes]. Token pages vary in size (token-pages.ts); the table says where each is. */
  private storedRange(i: number, section: PagedSection, p: number, table: Table): readonly [number, number] {
    const [off, len] = this.shard(i).sections[section];
    if (section === 'tokens') return [off + table.tokenStarts[p]!, table.tokenStarts[p + 1]! - table.tokenStarts[p]!];
    return [off + p * PAGE_BYTES[section], Math.min(PAGE_BYTES[section], len - p * PAGE_BYTES[section])];
  }

  private load(i: number, section: PagedSection, p: number): Int32Array | Buffer {
    const table = this.page(i, 'pages', 0) as Table;
    const [at, bytes] = this.storedRange(i, section, p, table);
    return this.verified(i, section, p, this.readAt(i, at, bytes, `${section} page ${p}`), table);
  }

  /** A page's bytes checked against its digest in the shard's page table, as served (decodePage). */
  private verified(i: number, section: PagedSection, p: number, buf: Buffer, table: Table): Int32Array | Buffer {
    const at = ((this.first[i * SLOTS + SLOT[section]] ?? 0) - (this.first[i * SLOTS] ?? 0) + p) * PAGE_DIGEST_BYTES;
    if (pageDigest(buf).compare(table.digests, at, at + PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES) !== 0) {
      // Nothing of a failed page is kept, here or below: the next request reads it again.
      this.storage.forget?.(this.shard(i).file);
      throw new IndexCorruptError(this.file(i), `${section} page ${p} fails its checksum`);
    }
    return decodePage(
      buf,
      section,
      Math.min(PAGE_TOKENS, this.shard(i).tokens - p * PAGE_TOKENS),
      this.file(i),
      `${section} page ${p}`,
    );
  }

  /**
   * Makes `refs` resident and holds them until the residency is released: pages in the cache are
   * pinned where they are, the others read asynchronously (at most `read_concurrency` reads at
   * once, a page already being read is awaited, not read again), verified and pinned. Their bytes
   * are reserved against `prefetch_bytes` first, all at once, so steps waiting for room never
   * hold part of it. A failed read releases everything and rejects with the error naming the file.
   */
  async prefetch(refs: readonly PageRef[]): Promise<Residency> {
    const want = new Map<number, PageRef>();
    for (const r of refs) want.set(this.key(r.shard, r.section, r.page), r);
    let need = 0;
    for (const [key, r] of want) if (!this.pinned.has(key)) need += this.pageBytes(r.shard, r.section, r.page);
    await this.budget.reserve(need);
    let left = need;
    const held: number[] = [];
    const hold = (key: number, page: Page, bytes: number): void => {
      const pin = this.pinned.get(key);
      if (pin) pin.pins++;
      else {
        this.pinned.set(key, { page, pins: 1, bytes });
        left -= bytes;
      }
      held.push(key);
    };
    let read = 0;
    const release = (): void => {
      let freed = Math.max(0, left);
      for (const key of held.splice(0)) {
        const pin = this.pinned.get(key)!;
        if (--pin.pins > 0) continue;
        this.pinned.delete(key);
        freed += pin.bytes;
      }
      left = 0;
      this.budget.release(freed);
    };
    try {
      const reads: Promise<void>[] = [];
      for (const [key, r] of want) {
        const bytes = this.pageBytes(r.shard, r.section, r.page);
        const v = this.cache.get(key) ?? this.pinned.get(key)?.page;
        if (v) {
          hold(key, v, bytes);
          continue;
        }
        read++;
        reads.push(this.readAsync(key, r).then((page) => hold(key, page, bytes)));
      }
      const results = await Promise.allSettled(reads);
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      release();
      throw err;
    }
    // Bytes reserved for pages another step pinned meanwhile go back now; pages another step
    // unpinned meanwhile (so not reserved above) are counted now.
    if (left > 0) this.budget.release(left);
    else if (left < 0) this.budget.take(-left);
    left = 0;
    return { bytes: need, read, release };
  }

  /** Bytes held for planned steps now (tests and metrics). */
  get prefetchHeld(): number {
    return this.budget.held;
  }

  /** One page read asynchronously, verified and put in the cache; concurrent asks share the read. */
  private readAsync(key: number, r: PageRef): Promise<Page> {
    let p = this.inflight.get(key);
    if (p) return p;
    p = (async () => {
      const table = await this.tableAsync(r.shard);
      const [at, bytes] = this.storedRange(r.shard, r.section, r.page, table);
      const buf = await this.readAtAsync(r.shard, at, bytes, `${r.section} page ${r.page}`);
      const page = this.verified(r.shard, r.section, r.page, buf, table);
      this.cacheStats.prefetched++;
      this.cache.set(key, page);
      return page;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private tableAsync(i: number): Promise<Table> {
    const key = this.key(i, 'pages', 0);
    const v = this.cache.get(key);
    if (v) return Promise.resolve(v as Table);
    let p = this.inflight.get(key) as Promise<Table> | undefined;
    if (p) return p;
    p = (async () => {
      const [off, len] = this.tableRange(i);
      const table = this.checkedTable(i, await this.readAtAsync(i, off, len, 'page table'));
      this.cache.set(key, table);
      return table;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async readAtAsync(i: number, off: number, len: number, what: string): Promise<Buffer> {
    let buf: Buffer;
    try {
      buf = await this.slots.run(() => this.storage.readRangeAsync(this.shard(i).file, off, len));
    } catch (err) {
      throw this.fault(i, err, what);
    }
    if (buf.length !== len)
      throw new IndexCorruptError(this.file(i), `${what} is truncated (${buf.length} of ${len} bytes)`);
    return buf;
  }

  close(): void {
    this.cache.clear();
    this.frontKey.fill(-1);
    this.frontPage.fill(undefined);
  }
}
