import {
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { IndexCorruptError } from '../../src/errors.js';
import {
  COLUMNLESS_FORMAT_VERSION,
  INDEX_FORMAT_VERSION,
  MANIFEST_FILE,
  PAGE_BYTES,
  ROWS_PER_PAGE,
  type Manifest,
  type Section,
} from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { readManifest, writeManifest } from '../../src/index/manifest-io.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-integrity-'));
const pristine = join(base, 'pristine');
const index = join(base, 'index');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(() => cpSync(inject('sampleIndex'), pristine, { recursive: true }));
beforeEach(() => {
  rmSync(index, { recursive: true, force: true });
  cpSync(pristine, index, { recursive: true });
});

type Dump = { rows: Buffer; spans: Buffer; strings: Buffer; lists: number[][]; tokens: number[] };
const SECTIONS = ['tokens', 'rows', 'spans', 'strings', 'lists'] as const;

/** Everything the reader serves from shard i; each part either reads or throws. */
function dump(r: IndexReader, i: number): Record<keyof Dump, unknown> {
  const s = r.shard(i);
  const attempt = <T>(f: () => T): T | Error => {
    try {
      return f();
    } catch (e) {
      return e as Error;
    }
  };
  return {
    rows: attempt(() => r.section(i, 'rows')),
    spans: attempt(() => r.section(i, 'spans')),
    strings: attempt(() => r.section(i, 'strings')),
    lists: attempt(() => s.tasks.flatMap((_, t) => [0, 1, 2].map((sp) => Array.from(r.list(i, t, sp as 0 | 1 | 2))))),
    tokens: attempt(() => {
      const out = new Int32Array(s.tokens);
      r.readTokens(i, 0, s.tokens, out, 0);
      return Array.from(out);
    }),
  };
}

function withReader<T>(dir: string, f: (r: IndexReader) => T): T {
  const r = IndexReader.open(dir);
  try {
    return f(r);
  } finally {
    r.close();
  }
}

const manifest = (): Manifest => readManifest(pristine);
const shardPath = (i: number): string => join(index, manifest().shards[i]!.file);
function flip(file: string, at: number, mask = 0x01): void {
  const b = readFileSync(file);
  b[at] = (b[at] ?? 0) ^ mask;
  writeFileSync(file, b);
}

describe('damaged shard files are detected, never served', () => {
  let good: Record<keyof Dump, unknown>;
  const target = 3;
  beforeAll(() => {
    good = withReader(pristine, (r) => dump(r, target));
  });

  for (const section of SECTIONS) {
    it.each([['first'], ['middle'], ['last']])(`flipped byte in the ${section} section (%s byte)`, (where) => {
      const [off, len] = manifest().shards[target]!.sections[section] as Section;
      const at = off + (where === 'first' ? 0 : where === 'last' ? len - 1 : len >> 1);
      flip(shardPath(target), at, 0x80);
      const got = withReader(index, (r) => dump(r, target));
      // The damaged page fails with a message naming it; the other sections are still served exactly.
      const page = Math.floor((at - off) / PAGE_BYTES[section]);
      expect(got[section]).toBeInstanceOf(IndexCorruptError);
      expect(String(got[section])).toMatch(
        new RegExp(
          `index file .*${manifest().shards[target]!.file}: ${section} page ${page} fails its checksum; rebuild the index`,
        ),
      );
      for (const other of SECTIONS) if (other !== section) expect(got[other]).toEqual(good[other]);
    });
  }

  it('a damaged page leaves the other pages of its section readable', () => {
    const shards = manifest().shards;
    const big = shards.reduce((best, s, i) => (s.records > shards[best]!.records ? i : best), 0);
    expect(shards[big]!.records).toBeGreaterThan(ROWS_PER_PAGE);
    flip(shardPath(big), shards[big]!.sections.rows[0] + 1, 0x80);
    withReader(index, (r) => {
      expect(() => r.row(big, 0)).toThrow(/rows page 0 fails its checksum/);
      expect(Array.from(r.row(big, ROWS_PER_PAGE))).toEqual(
        withReader(pristine, (p) => Array.from(p.row(big, ROWS_PER_PAGE))),
      );
    });
  });

  it('a record past its shard is refused, never read from the next section', () => {
    const s = manifest().shards[target]!;
    withReader(pristine, (r) => {
      expect(() => r.row(target, s.records + ROWS_PER_PAGE)).toThrow(
        /rows page \d+ is past the section's end; rebuild the index/,
      );
      expect(() => r.row(target, s.records + ROWS_PER_PAGE)).toThrow(IndexCorruptError);
    });
  });

  it('a flipped byte in the page table fails every page of the shard', () => {
    const [off, len] = manifest().shards[target]!.sections.pages;
    flip(shardPath(target), off + (len >> 1));
    const got = withReader(index, (r) => dump(r, target));
    for (const k of SECTIONS) expect(String(got[k])).toMatch(/page table fails its checksum; rebuild the index/);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('random byte damage (seed %i) never yields different data', (seed) => {
    const m = manifest();
    const i = (seed * 37) % m.shards.length;
    // Any byte of a served section (the deps section is the indexer's, see incremental.test.ts).
    const at = (seed * 2654435761) % m.shards[i]!.sections.deps[0];
    const before = withReader(pristine, (r) => dump(r, i));
    flip(shardPath(i), at, 1 << (seed % 8));
    const after = withReader(index, (r) => dump(r, i));
    const failed = Object.values(after).filter((v) => v instanceof Error);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f).toBeInstanceOf(IndexCorruptError);
    for (const k of SECTIONS) if (!(after[k] instanceof Error)) expect(after[k]).toEqual(before[k]);
  });

  it.each([
    ['cut in half', (f: string) => truncateSync(f, Math.floor(readFileSync(f).length / 2)), /is truncated/],
    [
      'cut one byte into its served sections',
      (f: string) => truncateSync(f, manifest().shards[target]!.sections.deps[0] - 1),
      /page table is truncated/,
    ],
    [
      'cut inside its strings',
      (f: string) => truncateSync(f, manifest().shards[target]!.sections.strings[0] + 100),
      /is truncated/,
    ],
    ['emptied', (f: string) => truncateSync(f, 0), /is truncated/],
    ['deleted', (f: string) => unlinkSync(f), /shard file is missing/],
    [
      'replaced by another shard',
      (f: string) => writeFileSync(f, readFileSync(shardPath(target + 1))),
      /fails its checksum|is truncated/,
    ],
    [
      'a symlink leaving the index',
      (f: string) => {
        const outside = join(base, 'outside.bin');
        writeFileSync(outside, readFileSync(f));
        unlinkSync(f);
        symlinkSync(outside, f);
      },
      /symlink leaving the index; refused/,
    ],
  ])('a shard file %s', (_name, damage, message) => {
    damage(shardPath(target));
    const r = IndexReader.open(index); // opening reads the manifest only
    const got = dump(r, target);
    r.close();
    const errors = Object.values(got).filter((v) => v instanceof Error);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toBeInstanceOf(IndexCorruptError);
    expect(errors.map(String).join('\n')).toMatch(message);
    for (const k of SECTIONS) if (!(got[k] instanceof Error)) expect(got[k]).toEqual(good[k]);
    // Other shards are unaffected.
    expect(withReader(index, (rr) => dump(rr, target + 2))).toEqual(withReader(pristine, (rr) => dump(rr, target + 2)));
  });
});

describe('a damaged manifest refuses to open', () => {
  const file = (): string => join(index, MANIFEST_FILE);
  const open = (): unknown => {
    try {
      IndexReader.open(index).close();
      return 'opened';
    } catch (e) {
      return e;
    }
  };
  afterEach(() => rmSync(join(index, 'x'), { force: true }));

  it.each([
    ['missing', () => unlinkSync(file()), /no index here \(manifest\.msgpack is missing\)/],
    ['empty', () => truncateSync(file(), 0), /not readable msgpack|checksum mismatch/],
    [
      'truncated',
      () => truncateSync(file(), Math.floor(readFileSync(file()).length * 0.7)),
      /not readable msgpack|checksum mismatch/,
    ],
    ['garbage', () => writeFileSync(file(), 'hello, world'), /not readable msgpack|checksum mismatch/],
    [
      'a flipped byte in its body',
      () => flip(file(), Math.floor(readFileSync(file()).length / 2)),
      /not readable msgpack|checksum mismatch/,
    ],
    [
      'a flipped last byte',
      () => flip(file(), readFileSync(file()).length - 1),
      /not readable msgpack|checksum mismatch/,
    ],
  ])('%s', (_name, damage, message) => {
    damage();
    const err = open();
    expect(err).toBeInstanceOf(IndexCorruptError);
    expect(String(err)).toMatch(message);
    expect(String(err)).toMatch(/manifest\.msgpack/);
  });

  it('of another format version', () => {
    writeManifest(index, { ...manifest(), formatVersion: 99 });
    expect(String(open())).toMatch(/index format 99 is not the supported format/);
  });

  it('of a format older than the one still served (whole-section checksums), with a clear request to rebuild', () => {
    writeManifest(index, { ...manifest(), formatVersion: COLUMNLESS_FORMAT_VERSION - 1 });
    const err = open();
    expect(err).toBeInstanceOf(IndexCorruptError);
    expect(String(err)).toMatch(
      new RegExp(
        `index format ${COLUMNLESS_FORMAT_VERSION - 1} is not the supported format ${INDEX_FORMAT_VERSION}; rebuild the index`,
      ),
    );
  });

  it.each([['shards/../../etc/passwd'], ['/etc/passwd'], ['shards/abc.bin']])('naming a shard file %s', (name) => {
    const m = manifest();
    writeManifest(index, { ...m, shards: m.shards.map((s, i) => (i === 1 ? { ...s, file: name } : s)) });
    const err = open();
    expect(err).toBeInstanceOf(IndexCorruptError);
    expect(String(err)).toMatch(/bad shard file name/);
  });

  it('naming an audio-groups file outside the index', () => {
    writeManifest(index, { ...manifest(), audioGroups: { ...manifest().audioGroups, file: '../pristine/x.bin' } });
    expect(() => IndexReader.open(index).audioGroups()).toThrow(/bad audio groups file name/);
  });

  it('with an audio-groups file that no longer matches', () => {
    flip(join(index, manifest().audioGroups.file), 0);
    const r = IndexReader.open(index);
    expect(() => r.audioGroups()).toThrow(IndexCorruptError);
    expect(() => r.audioGroups()).toThrow(/audio groups file fails its checksum/);
    r.close();
  });
});
