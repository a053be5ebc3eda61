/**
 * How ShardPages names pages: a page of a paged section of a shard (or a shard's page table) and
 * its number over the whole index, the key of the page cache and of reads in flight.
 */
import { IndexCorruptError } from '../errors.js';
import { PAGED_SECTIONS, type PagedSection, type ShardMeta } from './format.js';
import { sectionPages, type Table } from './page-table.js';

/** Each section's slot among a shard's keys; slot `pages` (the page tables) comes after every shard's sections. */
export const SLOT: Readonly<Record<PagedSection | 'pages', number>> = {
  tokens: 0,
  rows: 1,
  spans: 2,
  strings: 3,
  lists: 4,
  columns: 5,
  pages: 6,
};
export const SLOTS = PAGED_SECTIONS.length;

/** A page as held in memory: int32 sections as Int32Array, strings as bytes, a page table decoded. */
export type Page = Int32Array | Buffer | Table;

/** One page of a paged section of a shard, or (section `pages`) its page table: what a planned step asks to have resident. */
export interface PageRef {
  readonly shard: number;
  readonly section: PagedSection | 'pages';
  readonly page: number;
}

/**
 * Page numbers over the whole index: section s of shard i starts at first[i * SLOTS + s], and
 * shard i's page table is page first[shards * SLOTS] + i. They are small integers, which a Map
 * hashes without allocating (a composite key string or double would).
 */
export class PageKeys {
  private readonly first: Int32Array;

  constructor(
    private readonly shards: readonly ShardMeta[],
    /** The shard file named by a refused key's error. */
    private readonly file: (i: number) => string,
  ) {
    this.first = new Int32Array(shards.length * SLOTS + 1);
    let pages = 0;
    shards.forEach((s, i) => {
      PAGED_SECTIONS.forEach((name, slot) => {
        this.first[i * SLOTS + slot] = pages;
        pages += sectionPages(s, name);
      });
    });
    this.first[shards.length * SLOTS] = pages;
  }

  /** The cache key of a page ; a page past its section is refused, since it would alias the next section's key. */
  key(i: number, section: PagedSection | 'pages', p: number): number {
    const slot = SLOT[section];
    if (slot === SLOTS) return (this.first[this.shards.length * SLOTS] ?? 0) + i;
    const at = i * SLOTS + slot;
    const first = this.first[at] ?? 0;
    if (!(p >= 0 && p < (this.first[at + 1] ?? 0) - first))
      throw new IndexCorruptError(this.file(i), `${section} page ${p} is past the section's end`);
    return first + p;
  }
}
