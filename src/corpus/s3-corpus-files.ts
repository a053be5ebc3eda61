import { parseS3Url, type S3Settings } from '../storage/s3-location.js';
import { S3Storage } from '../storage/s3-storage.js';
import { StorageNotFound } from '../storage/storage.js';
import type { CorpusEntry, CorpusFiles, CorpusLocation, FileRead, FileStat, Opened } from './corpus-files.js';

/** Bytes per ranged GET of a JSONL shard, and how many such blocks are fetched ahead of the reader. */
const BLOCK_BYTES = 4 << 20;
const READ_AHEAD = 4;
/** Bytes handed to the line splitter at a time (as a local read's chunks are). */
const CHUNK = 1 << 20;

/**
 * A corpus at `s3://bucket/prefix`, read through the storage layer's S3 client. The metadata/ and
 * scp_files/ trees are listed (flat, once); the millions of `.npy` keys under audio_tokens/ never are. JSONL shards are read in ranged GETs of BLOCK_BYTES with the
 * next blocks fetched in the background: never a whole large object in memory, and a GET that
 * fails is retried with backoff from its own offset, so a store that restarts mid-shard costs a
 * pause. Small files (.scp, .npy, codec.json) are one GET each. A missing object is reported as
 * a missing file (the same quarantine as on disk); any other failure, after retries, is an error
 * that stops the build: a corpus that cannot be read must not index as a smaller one.
 */
export class S3CorpusFiles implements CorpusFiles {
  readonly root: string;
  readonly where: CorpusLocation;
  private readonly storage: S3Storage;
  /** Sizes and times of the objects seen in listings (the metadata/ tree), so opening a shard costs no HEAD. */
  private readonly listed = new Map<string, FileStat>();
  /** Per top-level folder: directory → its entries (name → is a directory). */
  private readonly trees = new Map<string, Map<string, Map<string, boolean>>>();

  constructor(location: string, s3: S3Settings) {
    const loc = parseS3Url(location);
    this.storage = new S3Storage(loc, {
      ...s3,
      blockBytes: BLOCK_BYTES,
      readAhead: READ_AHEAD,
      cacheBlocks: 2 * READ_AHEAD + 2,
    });
    this.root = this.storage.location;
    this.where = { location: this.root, s3 };
  }

  describe(rel: string): string {
    return this.storage.describe(rel);
  }

  isDir(rel: string): boolean {
    if (rel === '') return this.storage.listUnder('', 1).length > 0;
    return this.tree(rel.split('/')[0]!).has(rel);
  }

  list(rel: string): CorpusEntry[] {
    const entries = this.tree(rel.split('/')[0]!).get(rel);
    return entries ? [...entries].map(([name, dir]) => ({ name, dir })) : [];
  }

  /**
   * The directory tree under a top-level folder (metadata/, scp_files/), from one flat listing
   * taken on first use: O(files) there, a few requests per thousand files. audio_tokens/ (a key
   * per clip) is never listed: clips are read by the names their .scp gives.
   */
  private tree(top: string): Map<string, Map<string, boolean>> {
    let t = this.trees.get(top);
    if (t) return t;
    t = new Map();
    for (const [name, size, mtimeMs] of this.storage.listUnder(top)) {
      const parts = `${top}/${name}`.split('/');
      if (parts.some((p) => p === '')) continue; // a folder marker (`dir/`) or a key with `//`: not a file of the layout
      this.listed.set(parts.join('/'), { size, mtimeMs });
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        let entries = t.get(dir);
        if (!entries) t.set(dir, (entries = new Map()));
        entries.set(parts[i]!, (entries.get(parts[i]!) ?? false) || i < parts.length - 1);
      }
    }
    this.trees.set(top, t);
    return t;
  }

  stat(rel: string): FileStat | undefined {
    const known = this.listed.get(rel);
    if (known) return known;
    try {
      return this.storage.stat(rel);
    } catch (err) {
      if (err instanceof StorageNotFound) return undefined;
      throw err;
    }
  }

  open(rel: string): Opened {
    const st = this.stat(rel);
    if (!st) return { ok: false, why: 'missing', detail: `${this.describe(rel)} does not exist` };
    const { size } = st;
    const storage = this.storage;
    function* chunks(): Generator<Buffer> {
      for (let at = 0; at < size; at += CHUNK) {
        const got = storage.readRange(rel, at, Math.min(CHUNK, size - at), size);
        if (got.length === 0) return;
        yield got;
      }
    }
    return { ok: true, ...st, chunks, close: () => undefined };
  }

  read(rel: string): FileRead {
    try {
      return { ok: true, ...this.storage.readObject(rel) };
    } catch (err) {
      if (err instanceof StorageNotFound)
        return { ok: false, why: 'missing', detail: `${this.describe(rel)} does not exist` };
      throw err;
    }
  }

  /** Object storage has no links: every key under the prefix is inside the corpus. */
  readInside(rel: string): FileRead {
    return this.read(rel);
  }

  prefetch(rels: readonly string[]): void {
    this.storage.prefetch(rels);
  }

  close(): void {
    this.storage.close();
  }
}
