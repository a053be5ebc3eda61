import { createHash } from 'node:crypto';
import type { S3Settings } from '../storage/s3-location.js';

/**
 * The files of a corpus as the indexer reads them, wherever the corpus is: a local directory or
 * `s3://bucket/prefix`. Everything that reads a corpus (the shard listing, JSONL shards, `.scp`
 * lists, `.npy` codes, codec.json) goes through this, so a corpus on object storage indexes to the
 * same index as its copy on disk. Reads are synchronous, like the positional file reads the
 * indexer was written around (the S3 side waits on its own worker thread; see S3Storage).
 * Paths are relative to the corpus root, with `/` separators.
 */
export interface CorpusFiles {
  /** The corpus location: an absolute directory or the s3:// URL (in messages and part records). */
  readonly root: string;
  /** How a worker thread opens the same corpus. */
  readonly where: CorpusLocation;
  describe(rel: string): string;
  /** Whether `rel` ('' for the root) is a directory (on S3: a prefix with objects under it). */
  isDir(rel: string): boolean;
  /** The entries of a directory (throws when a local directory cannot be read; empty on S3 when nothing is there). */
  list(rel: string): CorpusEntry[];
  /** Size and modification time, or undefined when the file is not there. */
  stat(rel: string): FileStat | undefined;
  /** A file opened for reading in chunks (JSONL shards, which may be large: never read whole). */
  open(rel: string): Opened;
  /** A small file's bytes (scp lists, codec.json). */
  read(rel: string): FileRead;
  /** Like read, but refuses (`escape`) a file that resolves outside the corpus: audio tokens named by `.scp` paths. */
  readInside(rel: string): FileRead;
  /** A hint: these files will be read soon, in this order (S3 fetches them concurrently; a directory needs no hint). */
  prefetch?(rels: readonly string[]): void;
  close(): void;
}

export interface CorpusLocation {
  readonly location: string;
  readonly s3: S3Settings;
}

export interface CorpusEntry {
  readonly name: string;
  readonly dir: boolean;
}

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
}

/** Why a file could not be read: not there, not a regular file (a FIFO, a directory), outside the corpus, or unreadable (detail says how). */
export type FileProblem = {
  readonly ok: false;
  readonly why: 'missing' | 'not_regular' | 'escape' | 'unreadable';
  readonly detail: string;
};
export type FileRead = ({ readonly ok: true; readonly bytes: Buffer } & FileStat) | FileProblem;
export type Opened = ({ readonly ok: true; chunks(): Iterable<Buffer>; close(): void } & FileStat) | FileProblem;

/** sha256 of a file, streamed; of one that cannot be read, a marker that never equals a file's hash. */
export function hashFile(files: CorpusFiles, rel: string): string {
  const o = files.open(rel);
  if (!o.ok) return `unreadable: ${o.detail}`;
  const h = createHash('sha256');
  try {
    for (const c of o.chunks()) h.update(c);
  } finally {
    o.close();
  }
  return h.digest('hex');
}
