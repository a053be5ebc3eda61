import { closeSync, fstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { IndexCorruptError } from '../errors.js';
import { StorageNotFile, StorageNotFound, type Storage } from './storage.js';

/**
 * A local directory (or mount). Files are opened once and read positionally. A file that
 * resolves (through symlinks) outside the directory is refused: the server reads only the index.
 */
export class LocalStorage implements Storage {
  readonly location: string;
  readonly transferred = { requests: 0, bytes: 0 };
  private readonly fds = new Map<string, number>();
  private realRoot: string | undefined;

  constructor(location: string) {
    this.location = location;
  }

  describe(path: string): string {
    return join(this.location, path);
  }

  private real(path: string): string {
    const full = this.describe(path);
    let real: string;
    try {
      this.realRoot ??= realpathSync(this.location);
      real = realpathSync(full);
    } catch {
      throw new StorageNotFound(full);
    }
    if (!real.startsWith(this.realRoot + sep) && real !== resolve(this.realRoot)) throw new IndexCorruptError(full, 'file is a symlink leaving the index; refused');
    return real;
  }

  size(path: string): number {
    const st = statSync(this.real(path));
    if (!st.isFile()) throw new StorageNotFile(this.describe(path));
    return st.size;
  }

  readFile(path: string): Buffer {
    const buf = readFileSync(this.real(path));
    this.count(buf.length);
    return buf;
  }

  private count(bytes: number): void {
    this.transferred.requests++;
    this.transferred.bytes += bytes;
  }

  readRange(path: string, offset: number, length: number): Buffer {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(this.real(path), 'r');
      // Checked on the descriptor, so a path replaced by a directory (or a FIFO) is refused as
      // what it is, not read (EISDIR) or waited on.
      if (!fstatSync(fd).isFile()) {
        closeSync(fd);
        throw new StorageNotFile(this.describe(path));
      }
      this.fds.set(path, fd);
    }
    // allocUnsafeSlow: never a slice of the shared pool, so Int32Array views of it are aligned.
    const buf = Buffer.allocUnsafeSlow(length);
    const n = length === 0 ? 0 : readSync(fd, buf, 0, length, offset);
    this.count(n);
    return n === length ? buf : buf.subarray(0, n);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
