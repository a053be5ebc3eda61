import { LRUCache } from 'lru-cache';
import type { Storage } from '../storage/storage.js';
import { PAGE_BYTES, PAGE_TOKENS, type PagedSection, type ShardMeta } from './format.js';
import { PageKeys, type Page, type PageRef } from './page-keys.js';
import { PagePins, type HoldKind, type Residency } from './page-pins.js';
import { PageReads } from './page-reads.js';
import { tableRange, type Table } from './page-table.js';
import { ShardFiles } from './shard-files.js';

/** Slots of the front cache (a power of two), and how often a front hit refreshes the LRU (a power of two). */
const FRONT = 4096;
const REFRESH = 16;

/**
 * A page asked for while reads must not block (see ShardPages.strictly) that is not in memory.
 * Not a FlanError: whoever runs code strictly catches it, reads `ref` ahead and runs again.
 */
export class PageMiss extends Error {
  constructor(readonly ref: PageRef) {
    super(`${ref.section} page ${ref.page} of shard ${ref.shard} is not resident`);
  }
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
 * views, strings as bytes. Two ways in: `prefetch` reads pages asynchronously (concurrent reads,
 * consecutive pages of a section in one read, each page read once however many steps ask for it)
 * and holds them until released, so building finds every page in memory; a page asked for
 * synchronously that is neither cached nor held is read positionally on the spot (tools, tests),
 * or, inside `strictly` (serving), refused with a PageMiss.
 */
export class ShardPages {
  /** misses: pages read synchronously; prefetched: pages read asynchronously by `prefetch`. */
  readonly cacheStats = { hits: 0, misses: 0, prefetched: 0 };
  private readonly shards: readonly ShardMeta[];
  private readonly cache: LRUCache<number, Page>;
  /** Page numbers over the whole index, the cache keys. */
  private readonly keys: PageKeys;
  /**
   * A direct-mapped front of the LRU (slot = key mod FRONT): a batch looks pages up thousands of
   * times (a row, spans, a list entry, tokens and a uuid per example), mostly pages it used a
   * moment ago, and an LRU lookup costs several times this array probe. It holds only pages the
   * LRU holds (an evicted page leaves it through `dispose`), so the cache's byte bound stands.
   * Hits here refresh the LRU's recency every REFRESH-th time only: a page in use is still seen
   * as recent, at a fraction of the cost.
   */
  private readonly frontKey = new Int32Array(FRONT).fill(-1);
  private readonly frontPage: (Page | undefined)[] = new Array<undefined>(FRONT).fill(undefined);
  private frontHits = 0;
  /** Pages held for planned steps. */
  private readonly pins: PagePins<Page>;
  /** Asynchronous reads, coalesced and deduplicated. */
  private readonly reads: PageReads;
  private readonly files: ShardFiles;
  /** Depth of `strictly` calls: above 0 a page not in memory is a PageMiss, never a read. */
  private strict = 0;

  constructor(
    storage: Storage,
    shards: readonly ShardMeta[],
    cacheBytes: number,
    ahead: ReadAhead = DEFAULT_READ_AHEAD,
  ) {
    this.shards = shards;
    this.pins = new PagePins(ahead.prefetchBytes);
    this.files = new ShardFiles(storage, shards, ahead.readConcurrency);
    this.keys = new PageKeys(shards, (i) => this.file(i));
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
    this.reads = new PageReads(this.files, this.keys, this.cache, this.cacheStats);
  }

  /** Page `p` of an int32 section of shard `i`. */
  ints(i: number, section: Exclude<PagedSection, 'strings'>, p: number): Int32Array {
    return this.page(i, section, p) as Int32Array;
  }

  /** Page `p` of the strings section of shard `i`. */
  bytes(i: number, p: number): Buffer {
    return this.page(i, 'strings', p) as Buffer;
  }

  /**
   * Runs `fn` where no page is read synchronously: a page it asks for that is neither cached nor
   * held throws a PageMiss instead (the server's event loop and build threads run planning so).
   */
  strictly<T>(fn: () => T): T {
    this.strict++;
    try {
      return fn();
    } finally {
      this.strict--;
    }
  }

  /** Inside `strictly`: nothing may be read on the spot. */
  get isStrict(): boolean {
    return this.strict > 0;
  }

  /** The cache key of a page (see PageKeys). */
  private key(i: number, section: PagedSection | 'pages', p: number): number {
    return this.keys.key(i, section, p);
  }

  /** Bytes of a page as held in memory (the last page of a section may be shorter; token pages are held decoded, as int32). */
  private pageBytes(i: number, section: PagedSection | 'pages', p: number): number {
    if (section === 'pages') return tableRange(this.shard(i), this.file(i))[1];
    if (section === 'tokens') return 4 * Math.min(PAGE_TOKENS, this.shard(i).tokens - p * PAGE_TOKENS);
    const len = this.shard(i).sections[section][1];
    return Math.min(PAGE_BYTES[section], len - p * PAGE_BYTES[section]);
  }

  private page(i: number, section: PagedSection | 'pages', p: number): Page {
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
      const held = this.pins.get(key);
      if (held) {
        this.cacheStats.hits++;
        return held;
      }
      if (this.strict > 0) throw new PageMiss({ shard: i, section, page: p });
      this.cacheStats.misses++;
      v = section === 'pages' ? this.files.table(i) : this.load(i, section, p);
      this.cache.set(key, v);
      // A page larger than the whole cache is not kept by the LRU: keep it out of the front too.
      if (!this.cache.has(key)) return v;
    }
    this.frontKey[at] = key;
    this.frontPage[at] = v;
    return v;
  }

  private shard(i: number): ShardMeta {
    return this.files.shard(i);
  }

  private file(i: number): string {
    return this.files.file(i);
  }

  /** Every shard file is there with its manifest size (see ShardFiles.verifyFiles). */
  verifyFiles(): void {
    this.files.verifyFiles();
  }

  private load(i: number, section: PagedSection, p: number): Int32Array | Buffer {
    return this.files.page(i, section, p, this.page(i, 'pages', 0) as Table);
  }

  /**
   * Makes `refs` resident and holds them until the residency is released: pages in the cache are
   * held where they are, the others read asynchronously (at most `read_concurrency` reads at
   * once, consecutive pages of a section in one read, a page already being read is awaited, not
   * read again), verified and held. Their bytes count against `prefetch_bytes` (page-pins.ts).
   * A failed read releases everything and rejects with the error naming the file. `kind`: which
   * share of the limit they count against, and whether they wait for room (page-pins.ts).
   */
  prefetch(refs: readonly PageRef[], kind: HoldKind = 'batch'): Promise<Residency> {
    const want = new Map<number, number>();
    const byKey = new Map<number, PageRef>();
    for (const r of refs) {
      const key = this.key(r.shard, r.section, r.page);
      want.set(key, this.pageBytes(r.shard, r.section, r.page));
      byKey.set(key, r);
    }
    if (kind === 'miss' && this.pins.unheld(want) > this.pins.planRoom) return this.missedBeyondRoom(want, byKey);
    return this.pins.hold(
      want,
      (key) => this.cache.get(key),
      (keys) => this.reads.pages(keys.map((k) => byKey.get(k)!)),
      kind,
    );
  }

  /**
   * Pages planning missed that do not fit in planning's share of `prefetch_bytes` now: read into
   * the cache only (bounded by `cache_bytes`), not held, so what is held never passes the limit.
   * Planning, run again at once, finds them there. Held, beyond the share, only when the cache
   * cannot keep them at all (`cache_bytes` smaller than a page): planning could not go on else.
   */
  private async missedBeyondRoom(want: Map<number, number>, byKey: Map<number, PageRef>): Promise<Residency> {
    const refs = [...byKey.entries()].filter(([key]) => !this.cache.has(key) && !this.pins.get(key));
    await Promise.all(this.reads.pages(refs.map(([, r]) => r)));
    if ([...want.keys()].every((key) => this.cache.has(key) || this.pins.get(key) !== undefined))
      return { bytes: 0, read: refs.length, release: () => undefined };
    return this.pins.hold(
      want,
      (key) => this.cache.get(key),
      (keys) => this.reads.pages(keys.map((k) => byKey.get(k)!)),
      'miss',
    );
  }

  /**
   * Reads ahead what planning will likely read, and holds it until released (after the step's
   * batch is built), so the cache cannot let it go before planning uses it: as many of `refs`,
   * in order, as fit in planning's share of `prefetch_bytes` now (it never waits for room); the
   * rest is only read into the cache (a page evicted before planning reaches it is a PageMiss,
   * read then). Resolves once all are read; a failed read releases what it held and rejects.
   */
  async readAhead(refs: readonly PageRef[]): Promise<Residency> {
    let room = this.pins.planRoom;
    const hold: PageRef[] = [];
    const warm = new Map<number, PageRef>();
    const counted = new Set<number>();
    for (const r of refs) {
      const key = this.key(r.shard, r.section, r.page);
      if (this.pins.get(key) !== undefined || counted.has(key)) {
        hold.push(r);
        continue;
      }
      const bytes = this.pageBytes(r.shard, r.section, r.page);
      if (bytes <= room) {
        room -= bytes;
        counted.add(key);
        hold.push(r);
      } else if (!this.cache.has(key)) warm.set(key, r);
    }
    const reads = this.reads.pages([...warm.values()]);
    const held = this.prefetch(hold, 'plan');
    const [h, w] = await Promise.allSettled([held, Promise.all(reads)]);
    if (w.status === 'rejected') {
      if (h.status === 'fulfilled') h.value.release();
      throw w.reason;
    }
    if (h.status === 'rejected') throw h.reason;
    return h.value;
  }

  /** Bytes held for planned steps now (tests and metrics). */
  get prefetchHeld(): number {
    return this.pins.held;
  }

  close(): void {
    this.cache.clear();
    this.frontKey.fill(-1);
    this.frontPage.fill(undefined);
  }
}
