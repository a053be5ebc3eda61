import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** What a non-regular file is, for a quarantine detail. */
function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

export type Opened =
  | { readonly ok: true; readonly fd: number; readonly size: number; readonly mtimeMs: number }
  | { readonly ok: false; readonly notRegular: boolean; readonly missing?: boolean; readonly detail: string };

/**
 * Opens a corpus file for reading only if it is a regular file. It is opened non-blocking and
 * checked on the descriptor (fstat), so a FIFO where a file is expected is refused at once instead
 * of hanging the indexer, a directory is refused instead of failing with EISDIR, and nothing can
 * be swapped in between the check and the read.
 */
export function openRegular(path: string): Opened {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return {
      ok: false,
      notRegular: false,
      missing: (err as NodeJS.ErrnoException).code === 'ENOENT',
      detail: (err as Error).message,
    };
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    return { ok: false, notRegular: true, detail: `${kind(st)}, not a regular file; only regular files are read` };
  }
  return { ok: true, fd, size: st.size, mtimeMs: st.mtimeMs };
}

const CHUNK = 1 << 20;
const PROBE = Buffer.alloc(4096);

/** Reads an opened file in chunks (a plain file may exceed the 2 GiB a single Buffer read allows). */
export function* chunks(fd: number): Generator<Buffer> {
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    const n = readSync(fd, buf, 0, CHUNK, null);
    if (n === 0) return;
    yield buf.subarray(0, n);
  }
}

/** A regular file's bytes, or why it cannot be read. */
export function readRegular(
  path: string,
):
  | { readonly ok: true; readonly bytes: Buffer; readonly size: number; readonly mtimeMs: number }
  | Extract<Opened, { ok: false }> {
  const o = openRegular(path);
  if (!o.ok) return o;
  try {
    // Small files (codec tokens, scp lists) are read in one call into a buffer of their size; a
    // file that grew meanwhile is read on in chunks.
    const head = Buffer.allocUnsafe(o.size);
    let n = 0;
    while (n < o.size) {
      const got = readSync(o.fd, head, n, o.size - n, null);
      if (got === 0) break;
      n += got;
    }
    // Probe for growth with a shared small buffer: a fresh 1 MiB chunk per file here cost the
    // indexer (one read per clip) most of its time in garbage collection.
    const grew = n < o.size ? 0 : readSync(o.fd, PROBE, 0, PROBE.length, null);
    const rest = grew === 0 ? [] : [Buffer.from(PROBE.subarray(0, grew)), ...chunks(o.fd)];
    return {
      ok: true,
      bytes: rest.length === 0 ? head.subarray(0, n) : Buffer.concat([head, ...rest]),
      size: o.size,
      mtimeMs: o.mtimeMs,
    };
  } finally {
    closeSync(o.fd);
  }
}
