/**
 * Where the index is read from: a local directory or `s3://bucket/prefix`. The index reader's
 * page cache and the manifest reader go through this interface, so nothing above it knows which
 * one it is. Two read paths: synchronous (`readRange`: opening an index, tools, and a page miss
 * outside a planned step block their caller for one read) and asynchronous (`readRangeAsync`:
 * the pages a planned step needs, read ahead in parallel without blocking the thread).
 * Paths are relative to the location, with `/` separators. open-storage.ts picks the backend.
 */
export interface Storage {
  /** The location as given (for messages). */
  readonly location: string;
  /** Reads served so far and their bytes (what serving costs the store). */
  readonly transferred: { requests: number; bytes: number };
  /** How to name one file in a message: the local path or the s3:// URL. */
  describe(path: string): string;
  /** A file's size; throws StorageNotFound when it does not exist, StorageNotFile when it is not a regular file. */
  size(path: string): number;
  /** The whole file; throws StorageNotFound when it does not exist. */
  readFile(path: string): Buffer;
  /**
   * Bytes [offset, offset + length) of a file: fewer only at its end. The buffer is 4-byte
   * aligned. `size`, when the caller knows the file's size, bounds read-ahead.
   */
  readRange(path: string, offset: number, length: number, size?: number): Buffer;
  /**
   * The same bytes without blocking the calling thread: a read on the libuv pool for a local
   * file, one ranged GET (retried) for S3. Many may be in flight at once; the caller bounds how
   * many. Rejects with StorageNotFound, StorageNotFile or the backend's StorageError.
   */
  readRangeAsync(path: string, offset: number, length: number): Promise<Buffer>;
  /** Drops bytes held ahead for a file (they failed a check), so that its next read fetches them again. */
  forget?(path: string): void;
  /** Set once the index this storage opened was found republished or deleted under it: what happened. */
  readonly changed?: string;
  /**
   * Looks again, cheaply and without blocking on the network, whether the index was republished
   * (sets `changed`): a local manifest's stat; on object storage a HEAD of the manifest every few
   * seconds whose answer a later call sees (a read pinned to what was opened finds it too).
   */
  checkPublication?(): string | undefined;
  close(): void;
}

/** A file the storage does not have (callers turn it into their own error, naming what it was). */
export class StorageNotFound extends Error {
  constructor(readonly path: string) {
    super(`${path} does not exist`);
  }
}

/** A path that exists but is not a regular file (a directory, a FIFO): never read or waited on. */
export class StorageNotFile extends Error {
  constructor(readonly path: string) {
    super(`${path} is not a regular file`);
  }
}

export const isS3 = (location: string): boolean => location.startsWith('s3://');
