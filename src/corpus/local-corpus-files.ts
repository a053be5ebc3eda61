import { closeSync, existsSync, lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { CorpusEntry, CorpusFiles, CorpusLocation, FileRead, FileStat, Opened } from './corpus-files.js';
import { chunks, openRegular, readRegular, type Opened as RegularOpened } from './regular-file.js';

const problem = (o: Extract<RegularOpened, { ok: false }>): Extract<FileRead, { ok: false }> => ({
  ok: false,
  why: o.notRegular ? 'not_regular' : o.missing ? 'missing' : 'unreadable',
  detail: o.detail,
});

/**
 * A corpus in a local directory. Only regular files are read (a FIFO would block the indexer;
 * regular-file.ts), and audio tokens that resolve through a symlink to outside the corpus are
 * refused: an `.scp` path must not make the indexer read arbitrary files.
 */
export class LocalCorpusFiles implements CorpusFiles {
  readonly root: string;
  readonly where: CorpusLocation;
  private realRoot: string | undefined;
  private readonly realDirs = new Map<string, string>();

  constructor(location: string) {
    this.root = resolve(location);
    this.where = { location: this.root, s3: {} };
  }

  describe(rel: string): string {
    return join(this.root, rel);
  }

  isDir(rel: string): boolean {
    const p = join(this.root, rel);
    return existsSync(p) && statSync(p).isDirectory();
  }

  list(rel: string): CorpusEntry[] {
    return readdirSync(join(this.root, rel), { withFileTypes: true }).map((e) => ({
      name: e.name,
      dir: e.isDirectory(),
    }));
  }

  stat(rel: string): FileStat | undefined {
    try {
      const st = statSync(join(this.root, rel));
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return undefined;
    }
  }

  open(rel: string): Opened {
    const o = openRegular(join(this.root, rel));
    if (!o.ok) return problem(o);
    return { ok: true, size: o.size, mtimeMs: o.mtimeMs, chunks: () => chunks(o.fd), close: () => closeSync(o.fd) };
  }

  read(rel: string): FileRead {
    const got = readRegular(join(this.root, rel));
    return got.ok ? got : problem(got);
  }

  private realDir(dir: string): string {
    let real = this.realDirs.get(dir);
    if (real === undefined) {
      real = realpathSync.native(dir);
      this.realDirs.set(dir, real);
    }
    return real;
  }

  readInside(rel: string): FileRead {
    const file = join(this.root, rel);
    let real: string;
    try {
      this.realRoot ??= realpathSync.native(this.root);
      // Clips share few directories: resolve those once, and the file itself only if it is a link.
      real = lstatSync(file).isSymbolicLink()
        ? realpathSync.native(file)
        : join(this.realDir(dirname(file)), basename(file));
    } catch {
      return { ok: false, why: 'missing', detail: `${rel} does not exist` };
    }
    if (!real.startsWith(this.realRoot + sep))
      return { ok: false, why: 'escape', detail: `${rel} is a symlink leaving the corpus root` };
    const got = readRegular(real);
    return got.ok ? got : problem(got);
  }

  close(): void {}
}
