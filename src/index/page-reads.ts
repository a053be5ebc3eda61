/**
 * The asynchronous page reads of ShardPages: one promise per page asked for; consecutive pages of
 * a section share one read of at most RUN_BYTES, a page already being read is awaited rather
 * than read again, and every page read is verified and put in the cache.
 */
import type { LRUCache } from 'lru-cache';
import { PAGE_BYTES, PAGE_TOKENS, type PagedSection } from './format.js';
import { SLOT, type Page, type PageKeys, type PageRef } from './page-keys.js';
import type { Table } from './page-table.js';
import type { ShardFiles } from './shard-files.js';

/** Consecutive pages of a section read ahead together are fetched by one read of at most this many bytes. */
const RUN_BYTES = 1 << 20;

export class PageReads {
  /** Asynchronous reads under way, by key: a page two steps ask for is read once. */
  private readonly inflight = new Map<number, Promise<Page>>();

  constructor(
    private readonly files: ShardFiles,
    private readonly keys: PageKeys,
    private readonly cache: LRUCache<number, Page>,
    /** Counts the pages read here (ShardPages.cacheStats). */
    private readonly stats: { prefetched: number },
  ) {}

  /** Pages read asynchronously, one promise each (in order): runs of consecutive pages of a section share one read. */
  pages(refs: readonly PageRef[]): Promise<Page>[] {
    const out = new Map<PageRef, Promise<Page>>();
    const fresh: (PageRef & { section: PagedSection })[] = [];
    for (const r of refs) {
      const p = this.inflight.get(this.keys.key(r.shard, r.section, r.page));
      if (p) out.set(r, p);
      else if (r.section === 'pages') out.set(r, this.table(r.shard));
      else fresh.push(r as PageRef & { section: PagedSection });
    }
    const sorted = [...fresh].sort((a, b) => a.shard - b.shard || SLOT[a.section] - SLOT[b.section] || a.page - b.page);
    for (let k = 0; k < sorted.length;) {
      const head = sorted[k]!;
      let end = k + 1;
      const size = head.section === 'tokens' ? 4 * PAGE_TOKENS : PAGE_BYTES[head.section];
      while (
        end < sorted.length &&
        sorted[end]!.shard === head.shard &&
        sorted[end]!.section === head.section &&
        sorted[end]!.page === sorted[end - 1]!.page + 1 &&
        (end - k + 1) * size <= RUN_BYTES
      )
        end++;
      const run = sorted.slice(k, end);
      const pages = this.run(head.shard, head.section, head.page, run.length);
      run.forEach((r, j) => {
        const key = this.keys.key(r.shard, r.section, r.page);
        const p = pages.then((all) => all[j]!).finally(() => this.inflight.delete(key));
        this.inflight.set(key, p);
        out.set(r, p);
      });
      k = end;
    }
    return refs.map((r) => out.get(r)!);
  }

  /** Pages [p, p + n) of a section read by one asynchronous read, each verified and put in the cache. */
  private async run(i: number, section: PagedSection, p: number, n: number): Promise<Page[]> {
    const pages = await this.files.run(i, section, p, n, await this.table(i));
    pages.forEach((page, j) => {
      this.stats.prefetched++;
      this.cache.set(this.keys.key(i, section, p + j), page);
    });
    return pages;
  }

  private table(i: number): Promise<Table> {
    const key = this.keys.key(i, 'pages', 0);
    const v = this.cache.get(key);
    if (v) return Promise.resolve(v as Table);
    let p = this.inflight.get(key) as Promise<Table> | undefined;
    if (p) return p;
    p = this.files
      .tableAsync(i)
      .then((table) => {
        this.cache.set(key, table);
        return table;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
