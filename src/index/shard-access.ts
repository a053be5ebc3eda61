import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CorpusError } from '../errors.js';
import { ROW_WIDTH, type PagedSection, type ShardMeta } from './format.js';

const MAX_OPEN = 32;

/**
 * The indexer's reads of built shard files while it compiles the manifest: whole sections of one
 * shard at a time (bounded by the shard) and single rows and strings of any shard (the few records
 * a cross-shard check must look at twice). The server reads through IndexReader instead, page by
 * page and verified; these files were just written or checked by size by this build.
 */
export class ShardFiles {
  private readonly fds = new Map<number, number>();

  constructor(
    readonly dir: string,
    private readonly shards: readonly ShardMeta[],
  ) {}

  private read(s: number, offset: number, length: number): Buffer {
    const shard = this.shards[s]!;
    let fd = this.fds.get(s);
    if (fd === undefined) {
      // A bounded set of open files: a corpus has thousands of shards.
      const [oldest] = this.fds;
      if (this.fds.size >= MAX_OPEN && oldest) {
        closeSync(oldest[1]);
        this.fds.delete(oldest[0]);
      }
      this.fds.set(s, (fd = openSync(join(this.dir, shard.file), 'r')));
    }
    const buf = Buffer.alloc(length);
    for (let at = 0; at < length;) {
      const n = readSync(fd, buf, at, length - at, offset + at);
      if (n === 0)
        throw new CorpusError(
          join(this.dir, shard.file),
          `ends before byte ${offset + length} (a shard file changed during the build); run the build again`,
        );
      at += n;
    }
    return buf;
  }

  /** A whole section's bytes. */
  bytes(s: number, section: PagedSection): Buffer {
    const [off, len] = this.shards[s]!.sections[section];
    return this.read(s, off, len);
  }

  /** A whole int32 section (rows, spans, lists). */
  ints(s: number, section: Exclude<PagedSection, 'strings'>): Int32Array {
    const b = this.bytes(s, section);
    return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
  }

  /** One row's fields (see ROW). */
  row(s: number, r: number): Int32Array {
    const b = this.read(s, this.shards[s]!.sections.rows[0] + r * ROW_WIDTH * 4, ROW_WIDTH * 4);
    return new Int32Array(b.buffer, b.byteOffset, ROW_WIDTH);
  }

  /** Bytes [off, off + len) of a shard's string blob. */
  string(s: number, off: number, len: number): Buffer {
    return this.read(s, this.shards[s]!.sections.strings[0] + off, len);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
