import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { checksum } from '../util/hash.js';
import type { IndexOptions, ShardMeta } from './format.js';
import { writeFileAtomic } from './manifest-io.js';
import type { PartId } from './partition.js';

/**
 * The record a finished part of a partitioned build leaves in `<out>/parts/`: what it was built
 * from (corpus listing, tokenizer, options, the stat of each of its files) and the metadata of
 * the shards it wrote. The merge trusts nothing else a part did; a part killed midway leaves no
 * record (it is written last, atomically), so the merge sees it as missing.
 */
export const PARTS_DIR = 'parts';
const NAME = /^part-(\d+)-of-(\d+)\.msgpack$/;

export interface PartRecord {
  readonly formatVersion: number;
  readonly part: PartId;
  readonly corpus: string;
  /** Digest of the corpus listing (every JSONL path and size) the assignment was computed from. */
  readonly listing: string;
  readonly tokenizerFingerprint: string;
  readonly options: IndexOptions;
  /** [source, bytes, mtimeMs] of every file of this part, as built. */
  readonly files: readonly (readonly [source: string, bytes: number, mtimeMs: number])[];
  readonly shards: readonly ShardMeta[];
}

export function partFile(p: PartId): string {
  const w = Math.max(4, String(p.count).length);
  return join(PARTS_DIR, `part-${String(p.index).padStart(w, '0')}-of-${String(p.count).padStart(w, '0')}.msgpack`);
}

export function writePartRecord(out: string, rec: PartRecord): string {
  const body = pack(rec);
  const file = partFile(rec.part);
  mkdirSync(join(out, PARTS_DIR), { recursive: true });
  writeFileAtomic(join(out, file), pack({ body, checksum: checksum(body) }));
  return file;
}

/** The part a record's file name (`part-0003-of-0008.msgpack`) stands for. */
export function partOfName(name: string): PartId | undefined {
  const m = NAME.exec(name);
  return m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
}

/**
 * What a merge would still wait for, given the parts whose records are there: none yet, or some
 * of the N. Undefined once every part of one N is there (or records of several N are, which the
 * merge refuses by itself).
 */
export function partsToWaitFor(present: readonly PartId[]): string | undefined {
  if (present.length === 0) return 'no part records yet';
  const counts = new Set(present.map((p) => p.count));
  if (counts.size > 1) return undefined;
  const [count] = counts as unknown as [number];
  const have = new Set(present.map((p) => p.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.has(i));
  return missing.length
    ? `${missing.length} of ${count} parts not done (${missing.map((i) => `${i}/${count}`).join(', ')})`
    : undefined;
}

/** The part records present in `out` (with their file names); unreadable ones are `damaged`. */
export function listPartRecords(out: string): { file: string; part: PartId; record?: PartRecord }[] {
  let names: string[];
  try {
    names = readdirSync(join(out, PARTS_DIR));
  } catch {
    return [];
  }
  const found = [];
  for (const name of names.sort()) {
    const part = partOfName(name);
    if (!part) continue;
    const file = join(PARTS_DIR, name);
    found.push({ file, part, record: readPartRecord(join(out, file)) });
  }
  return found;
}

function readPartRecord(path: string): PartRecord | undefined {
  try {
    const outer = unpack(readFileSync(path)) as { body?: Uint8Array; checksum?: string };
    if (!(outer.body instanceof Uint8Array) || outer.checksum !== checksum(outer.body)) return undefined;
    return unpack(outer.body) as PartRecord;
  } catch {
    return undefined;
  }
}
