import {
  close as closeFd,
  closeSync,
  fstat,
  fstatSync,
  open,
  openSync,
  read,
  readFileSync,
  readSync,
  realpath,
  realpathSync,
  statSync,
} from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { IndexCorruptError, StorageError } from '../errors.js';
import { checksum } from '../util/hash.js';
import { StorageNotFile, StorageNotFound, type Storage } from './storage.js';

/** The manifest's name in an index (the index layer's MANIFEST_FILE; storage sits below it). */
const MANIFEST = 'manifest.msgpack';

/** The manifest a server opened: its file's identity and its content's checksum. */
interface Published {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly sum: string;
}

/**
 * A local directory (or mount). Files are opened once and read positionally: synchronously
 * (readSync) or on the libuv thread pool (fs.read with a callback), through the same descriptor.
 * A file that resolves (through symlinks) outside the directory is refused: the server reads only
 * the index.
 */
export class LocalStorage implements Storage {
  readonly location: string;
  readonly transferred = { requests: 0, bytes: 0 };
  private readonly fds = new Map<string, number>();
  /** Descriptors being opened asynchronously, so concurrent first reads of a file open it once. */
  private readonly opening = new Map<string, Promise<number>>();
  private realRoot: string | undefined;
  private published: Published | undefined;
  private why: string | undefined;

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
    return this.inside(full, real);
  }

  private inside(full: string, real: string): string {
    const root = this.realRoot!;
    if (!real.startsWith(root + sep) && real !== resolve(root))
      throw new IndexCorruptError(full, 'file is a symlink leaving the index; refused');
    return real;
  }

  size(path: string): number {
    const st = statSync(this.real(path));
    if (!st.isFile()) throw new StorageNotFile(this.describe(path));
    return st.size;
  }

  readFile(path: string): Buffer {
    if (path === MANIFEST && !this.published) {
      // The manifest the index is opened from: remembered (stat and content of one descriptor), see checkPublication.
      const fd = openSync(this.real(path), 'r');
      try {
        const st = fstatSync(fd);
        const buf = readFileSync(fd);
        this.count(buf.length);
        this.published = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, sum: checksum(buf) };
        return buf;
      } finally {
        closeSync(fd);
      }
    }
    const buf = readFileSync(this.real(path));
    this.count(buf.length);
    return buf;
  }

  get changed(): string | undefined {
    return this.why;
  }

  /**
   * Whether the manifest read at open is still the one published here; a description of the change
   * if not (and from then on). One stat while it is unchanged; its content is compared only when
   * the file was replaced or touched, so a rewrite of the same manifest is no change.
   */
  checkPublication(): string | undefined {
    const was = this.published;
    if (this.why !== undefined || !was) return this.why;
    const file = this.describe(MANIFEST);
    let now: Published;
    try {
      const st = statSync(file);
      if (st.ino === was.ino && st.size === was.size && st.mtimeMs === was.mtimeMs) return undefined;
      now = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, sum: checksum(readFileSync(file)) };
    } catch {
      return (this.why = `${file} was deleted since this server opened the index; restart the server once an index is published there again`);
    }
    if (now.sum === was.sum) {
      this.published = now;
      return undefined;
    }
    this.why = `${file} was republished (the index re-indexed or replaced) since this server opened it; shards it has not opened yet may be gone: restart the server to serve what is there now`;
    return this.why;
  }

  /** Before a file is first opened: refused once the index was republished (its files may belong to another index). */
  private checkOpen(path: string): void {
    if (path === MANIFEST) return;
    const why = this.checkPublication();
    if (why !== undefined) throw new StorageError(this.location, why, false);
  }

  private count(bytes: number): void {
    this.transferred.requests++;
    this.transferred.bytes += bytes;
  }

  readRange(path: string, offset: number, length: number): Buffer {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      this.checkOpen(path);
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

  /** The file's descriptor, opened (and checked as readRange checks it) without blocking the thread. */
  private fdAsync(path: string): Promise<number> {
    const fd = this.fds.get(path);
    if (fd !== undefined) return Promise.resolve(fd);
    let p = this.opening.get(path);
    if (p) return p;
    try {
      this.checkOpen(path);
    } catch (err) {
      return Promise.reject(err);
    }
    const full = this.describe(path);
    const call = <T>(f: (cb: (err: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> =>
      new Promise((ok, fail) => f((err, v) => (err ? fail(err) : ok(v))));
    p = (async () => {
      let real: string;
      try {
        this.realRoot ??= await call<string>((cb) => realpath(this.location, cb));
        real = await call<string>((cb) => realpath(full, cb));
      } catch {
        throw new StorageNotFound(full);
      }
      const opened = await call<number>((cb) => open(this.inside(full, real), 'r', cb));
      const st = await call<{ isFile(): boolean }>((cb) => fstat(opened, cb)).catch((err: unknown) => {
        closeFd(opened, () => undefined);
        throw err;
      });
      if (!st.isFile()) {
        closeFd(opened, () => undefined);
        throw new StorageNotFile(full);
      }
      // A synchronous read may have opened it meanwhile: keep one descriptor per file.
      const had = this.fds.get(path);
      if (had !== undefined) {
        closeFd(opened, () => undefined);
        return had;
      }
      this.fds.set(path, opened);
      return opened;
    })().finally(() => this.opening.delete(path));
    this.opening.set(path, p);
    return p;
  }

  async readRangeAsync(path: string, offset: number, length: number): Promise<Buffer> {
    const fd = await this.fdAsync(path);
    const buf = Buffer.allocUnsafeSlow(length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((ok, fail) =>
        read(fd, buf, done, length - done, offset + done, (err, bytes) => (err ? fail(err) : ok(bytes))),
      );
      if (n === 0) break;
      done += n;
    }
    this.count(done);
    return done === length ? buf : buf.subarray(0, done);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
