import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { PARTS_DIR, partFile } from '../../src/index/part-file.js';
import { buildPartTo, mergePartsTo } from '../../src/index/parts-to.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { listKeys, makeClient } from '../../src/storage/s3-client.js';
import { fetchFiles } from '../../src/storage/s3-download.js';
import { indexTree } from '../helpers/index-tree.js';
import { useS3Process } from '../helpers/s3-server.js';

/**
 * A partitioned build whose parts share an s3:// output and no filesystem: every part builds in
 * a stage of its own (as on separate machines) and uploads its shards and record; the merge, in yet
 * another stage, compiles from what the bucket holds. The index in the bucket is the one-process
 * index, object for object and byte for byte, and the consumed part records are gone.
 */
const { base, s3 } = useS3Process('s3parts');

const keysUnder = async (prefix: string): Promise<string[]> =>
  (await listKeys(makeClient(s3.settings), { bucket: 'flan', prefix }, 3))
    .map((k) => k.key.slice(prefix.length + 1))
    .sort();

describe('--part I/N and --merge with --out s3://', () => {
  it('parts in separate stages, merged from the bucket, equal the one-process index byte for byte', async () => {
    const out = 's3://flan/parts';
    const corpus = inject('sampleCorpus');
    const common = { corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], s3: s3.settings };
    const N = 3;
    for (const i of [2, 0])
      await buildPartTo({ ...common, part: { index: i, count: N }, stage: join(base, `part-${i}`) });
    expect(await keysUnder('parts/parts')).toEqual(
      [partFile({ index: 0, count: N }), partFile({ index: 2, count: N })]
        .sort()
        .map((f) => f.slice(PARTS_DIR.length + 1)),
    );
    await expect(mergePartsTo({ ...common, stage: join(base, 'merge') })).rejects.toThrow(
      /cannot merge: 1 of 3 parts missing \(1\/3\)/,
    );
    await buildPartTo({ ...common, part: { index: 1, count: N }, stage: join(base, 'part-1') });

    const merged = await mergePartsTo({ ...common, stage: join(base, 'merge') });
    expect(merged.parts).toBe(N);
    const want = indexTree(inject('sampleIndex'));
    expect(await keysUnder('parts')).toEqual(Object.keys(want).sort());
    // What the bucket holds, fetched back, is the one-process index.
    const back = join(base, 'back');
    expect(await fetchFiles(out, s3.settings, Object.keys(want), back)).toEqual([]);
    expect(indexTree(back)).toEqual(want);
    expect(
      readFileSync(join(back, 'manifest.msgpack')).equals(
        readFileSync(join(inject('sampleIndex'), 'manifest.msgpack')),
      ),
    ).toBe(true);
  });
});
