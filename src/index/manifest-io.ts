import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { CorpusError, describeError, FlanError, IndexCorruptError } from '../errors.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';
import { checksum } from '../util/hash.js';
import { COLUMNLESS_FORMAT_VERSION, INDEX_FORMAT_VERSION, MANIFEST_FILE, type Manifest } from './format.js';

/**
 * Writes a file (its parts back to back) so that readers see either the old or the complete new
 * content. A failed write (ENOSPC, EFBIG, EIO) removes its temporary and names the file: a full
 * disk must not leave `*.tmp` litter behind, and the index stays as it was.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string | Iterable<Uint8Array>): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const part of typeof data === 'string'
        ? [Buffer.from(data)]
        : data instanceof Uint8Array
          ? [data]
          : (data as Iterable<Uint8Array>)) {
        // A write may be short (a file size limit is met mid-buffer): go on until it is whole or throws.
        for (let at = 0; at < part.length;) at += writeSync(fd, part, at, part.length - at);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new CorpusError(
      path,
      `cannot be written (${code ? `${code}: ` : ''}${describeError(err)}); the index was left as it was: free space (or raise the file size limit) and run again`,
    );
  }
}

export function writeManifest(dir: string, manifest: Manifest): void {
  const body = pack(manifest);
  writeFileAtomic(join(dir, MANIFEST_FILE), pack({ body, checksum: checksum(body) }));
}

/** Reads and verifies a manifest; any damage is an IndexCorruptError, never a half-open index. */
export function readManifest(dir: string): Manifest {
  return readManifestFrom(new LocalStorage(dir));
}

export function readManifestFrom(storage: Storage): Manifest {
  const file = storage.describe(MANIFEST_FILE);
  let raw: Buffer;
  try {
    raw = storage.readFile(MANIFEST_FILE);
  } catch (err) {
    if (err instanceof FlanError) throw err;
    throw new IndexCorruptError(file, 'no index here (manifest.msgpack is missing)');
  }
  let outer: { body?: Uint8Array; checksum?: string };
  try {
    outer = unpack(raw) as typeof outer;
  } catch {
    throw new IndexCorruptError(file, 'manifest is not readable msgpack');
  }
  if (!(outer.body instanceof Uint8Array) || outer.checksum !== checksum(outer.body)) {
    throw new IndexCorruptError(file, 'manifest checksum mismatch');
  }
  const manifest = unpack(outer.body) as Manifest;
  if (manifest.formatVersion === COLUMNLESS_FORMAT_VERSION) return withoutColumns(manifest);
  if (manifest.formatVersion !== INDEX_FORMAT_VERSION) {
    throw new IndexCorruptError(
      file,
      `index format ${String(manifest.formatVersion)} is not the supported format ${INDEX_FORMAT_VERSION}`,
    );
  }
  return manifest;
}

/**
 * A format-9 manifest as this format's: an empty columns section where the page table starts (no
 * pages, so the page table is the one format 9 wrote) and no source lists.
 */
function withoutColumns(manifest: Manifest): Manifest {
  return {
    ...manifest,
    shards: manifest.shards.map((s) => ({
      ...s,
      sections: { ...s.sections, columns: [s.sections.pages[0], 0] },
      sources: [],
    })),
  };
}

/** Whether `dir` holds an index this build writes: false when it is missing, damaged or of an older format (rebuild it). */
export function indexIsCurrent(dir: string): boolean {
  try {
    return readManifest(dir).formatVersion === INDEX_FORMAT_VERSION;
  } catch {
    return false;
  }
}
