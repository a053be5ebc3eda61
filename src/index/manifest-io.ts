import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { IndexCorruptError } from '../errors.js';
import { checksum } from '../util/hash.js';
import { INDEX_FORMAT_VERSION, MANIFEST_FILE, type Manifest } from './format.js';

/** Writes a file so that readers see either the old or the complete new content. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeManifest(dir: string, manifest: Manifest): void {
  const body = pack(manifest);
  writeFileAtomic(join(dir, MANIFEST_FILE), pack({ body, checksum: checksum(body) }));
}

/** Reads and verifies a manifest; any damage is an IndexCorruptError, never a half-open index. */
export function readManifest(dir: string): Manifest {
  const file = join(dir, MANIFEST_FILE);
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch {
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
  if (manifest.formatVersion !== INDEX_FORMAT_VERSION) {
    throw new IndexCorruptError(file, `index format ${String(manifest.formatVersion)} is not the supported format ${INDEX_FORMAT_VERSION}`);
  }
  return manifest;
}

/** Whether `dir` holds an index this build can open: false when it is missing, damaged or of another format (rebuild it). */
export function indexIsCurrent(dir: string): boolean {
  try {
    readManifest(dir);
    return true;
  } catch {
    return false;
  }
}
