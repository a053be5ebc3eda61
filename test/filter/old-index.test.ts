import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanError } from '../../src/errors.js';
import { COLUMNLESS_FORMAT_VERSION, PAGE_DIGEST_BYTES, type Manifest, type ShardMeta } from '../../src/index/format.js';
import { indexIsCurrent, readManifest, writeManifest } from '../../src/index/manifest-io.js';
import { pagesBefore, sectionPages } from '../../src/index/page-table.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { checksum } from '../../src/util/hash.js';
import { digests } from '../helpers/batch-digests.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';

/**
 * An index of the format before the filter columns (9) still serves every stream without a
 * filter, batch for batch as the current format does; a filter or a `source:` selector on it is
 * refused asking for a rebuild, and `npm start` (indexIsCurrent) rebuilds it.
 */

/** Rewrites a shard as format 9 wrote it: no columns section, no column digests in its page table. */
function withoutColumns(dir: string, s: ShardMeta): Record<string, unknown> {
  const path = join(dir, s.file);
  const file = readFileSync(path);
  const [pagesOff, pagesLen] = s.sections.pages;
  const table = file.subarray(pagesOff, pagesOff + pagesLen);
  const cut = pagesBefore(s, 'columns') * PAGE_DIGEST_BYTES;
  const end = cut + sectionPages(s, 'columns') * PAGE_DIGEST_BYTES;
  const newTable = Buffer.concat([table.subarray(0, cut), table.subarray(end)]);
  const deps = file.subarray(s.sections.deps[0], s.sections.deps[0] + s.sections.deps[1]);
  const at = s.sections.columns[0];
  writeFileSync(path, Buffer.concat([file.subarray(0, at), newTable, deps]));
  const sections: Record<string, unknown> = { ...s.sections };
  delete sections.columns;
  const rest: Record<string, unknown> = { ...s };
  delete rest.sources;
  return {
    ...rest,
    bytes: at + newTable.length + deps.length,
    sections: { ...sections, pages: [at, newTable.length], deps: [at + newTable.length, deps.length] },
    checksums: { ...s.checksums, pages: checksum(newTable) },
  };
}

let dir: string;
let current: DataServiceCore;
let old: DataServiceCore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'filter-old-index-'));
  cpSync(inject('sampleIndex'), dir, { recursive: true });
  const m = readManifest(dir);
  const shards = m.shards.map((s) => withoutColumns(dir, s));
  writeManifest(dir, { ...m, formatVersion: COLUMNLESS_FORMAT_VERSION, shards } as unknown as Manifest);
  current = await openCore(inject('sampleIndex'));
  old = await openCore(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('an index of the format without filter columns', () => {
  it('serves unfiltered streams byte for byte as the current format does', () => {
    expect(old.catalog.reader.manifest.formatVersion).toBe(COLUMNLESS_FORMAT_VERSION);
    const spec = trainSpec({ batchSize: 4, seqLen: 2048 });
    const a = digests(take(current.open({ spec }), 6).batches);
    expect(a).toHaveLength(6);
    expect(digests(take(old.open({ spec }), 6).batches)).toEqual(a);
    const dev = { split: 'dev', batchSize: 4, seqLen: 2048, packing: 'packed' };
    expect(digests(take(old.open({ spec: dev }), 4).batches)).toEqual(
      digests(take(current.open({ spec: dev }), 4).batches),
    );
  });

  it('refuses a filter, asking for a rebuild; start rebuilds it', () => {
    let err: unknown;
    try {
      take(old.open({ spec: trainSpec({ filter: 'clips >= 1' }) }), 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlanError);
    expect((err as FlanError).code).toBe('FAILED_PRECONDITION');
    expect((err as FlanError).message).toMatch(/index is format 9.*format 10.*rebuild/);
    expect(() => old.catalog.filter('clips >= 1')).toThrow(/rebuild/);
    // Nor does it record sources, so a source: selector asks for a rebuild too.
    expect(() => old.open({ spec: trainSpec({ mixture: { weights: { 'source:studio': 1 } } }) })).toThrow(
      /no task has source "studio".*records none.*rebuild/,
    );
    expect(indexIsCurrent(dir)).toBe(false);
    expect(indexIsCurrent(inject('sampleIndex'))).toBe(true);
  });
});
