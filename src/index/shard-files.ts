import { FlanError, IndexCorruptError } from '../errors.js';
import { StorageNotFile, StorageNotFound, type Storage } from '../storage/storage.js';
import type { PagedSection, ShardMeta } from './format.js';
import { checkedTable, pagesBefore, storedRange, tableRange, verifiedPage, type Table } from './page-table.js';
import { Slots } from '../util/slots.js';

/**
 * The shard files of an index on their storage: reading a page or a run of consecutive pages,
 * on the spot or asynchronously (at most `read_concurrency` reads at once), verified against the
 * shard's page table, with storage failures turned into the index error naming the file. What is
 * kept in memory is shard-pages.ts's.
 */
export class ShardFiles {
  private readonly storage: Storage;
  private readonly shards: readonly ShardMeta[];
  private readonly slots: Slots;

  constructor(storage: Storage, shards: readonly ShardMeta[], readConcurrency: number) {
    this.storage = storage;
    this.shards = shards;
    this.slots = new Slots(readConcurrency);
  }

  shard(i: number): ShardMeta {
    const s = this.shards[i];
    if (!s) throw new IndexCorruptError(this.storage.location, `no shard ${i}`);
    return s;
  }

  file(i: number): string {
    return this.storage.describe(this.shard(i).file);
  }

  private forget(i: number): () => void {
    return () => this.storage.forget?.(this.shard(i).file);
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

  private checkLength(i: number, buf: Buffer, len: number, what: string): Buffer {
    if (buf.length !== len)
      throw new IndexCorruptError(this.file(i), `${what} is truncated (${buf.length} of ${len} bytes)`);
    return buf;
  }

  private readAt(i: number, off: number, len: number, what: string): Buffer {
    let buf: Buffer;
    try {
      buf = this.storage.readRange(this.shard(i).file, off, len, this.shard(i).bytes);
    } catch (err) {
      throw this.fault(i, err, what);
    }
    return this.checkLength(i, buf, len, what);
  }

  private async readAtAsync(i: number, off: number, len: number, what: string): Promise<Buffer> {
    let buf: Buffer;
    try {
      buf = await this.slots.run(() => this.storage.readRangeAsync(this.shard(i).file, off, len));
    } catch (err) {
      throw this.fault(i, err, what);
    }
    return this.checkLength(i, buf, len, what);
  }

  /** Shard i's page table, read on the spot and checked. */
  table(i: number): Table {
    const [off, len] = tableRange(this.shard(i), this.file(i));
    return checkedTable(this.shard(i), this.file(i), this.readAt(i, off, len, 'page table'), this.forget(i));
  }

  /** Shard i's page table, read asynchronously and checked. */
  async tableAsync(i: number): Promise<Table> {
    const [off, len] = tableRange(this.shard(i), this.file(i));
    const buf = await this.readAtAsync(i, off, len, 'page table');
    return checkedTable(this.shard(i), this.file(i), buf, this.forget(i));
  }

  private verified(i: number, section: PagedSection, p: number, buf: Buffer, table: Table): Int32Array | Buffer {
    const s = this.shard(i);
    return verifiedPage(s, this.file(i), section, p, pagesBefore(s, section), buf, table, this.forget(i));
  }

  /** Page p of a section, read on the spot and verified. */
  page(i: number, section: PagedSection, p: number, table: Table): Int32Array | Buffer {
    const [at, bytes] = storedRange(this.shard(i), section, p, table);
    return this.verified(i, section, p, this.readAt(i, at, bytes, `${section} page ${p}`), table);
  }

  /** Pages [p, p + n) of a section by one asynchronous read, each verified. */
  async run(i: number, section: PagedSection, p: number, n: number, table: Table): Promise<(Int32Array | Buffer)[]> {
    const s = this.shard(i);
    const [from] = storedRange(s, section, p, table);
    const [lastAt, lastLen] = storedRange(s, section, p + n - 1, table);
    const what = n === 1 ? `${section} page ${p}` : `${section} pages ${p}-${p + n - 1}`;
    const buf = await this.readAtAsync(i, from, lastAt + lastLen - from, what);
    const pages: (Int32Array | Buffer)[] = [];
    for (let q = p; q < p + n; q++) {
      const [at, len] = storedRange(s, section, q, table);
      pages.push(this.verified(i, section, q, buf.subarray(at - from, at - from + len), table));
    }
    return pages;
  }
}
