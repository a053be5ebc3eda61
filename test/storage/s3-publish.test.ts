import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { buildIndexTo } from '../../src/index/build-to.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { listKeys, makeClient } from '../../src/storage/s3-client.js';
import { useS3Process } from '../helpers/s3-server.js';
import { shardPath, writeShard } from '../helpers/tiny-corpus.js';

/**
 * Republishing an index to the same s3:// prefix: once the new manifest is up, the index files no
 * manifest still needs are deleted — those of the publication before the previous one — while the
 * previous publication's stay readable for replicas that opened it, and objects that are not index
 * files are never touched.
 */
const { base, s3 } = useS3Process('s3pub');

const keys = async (): Promise<Set<string>> =>
  new Set(
    (await listKeys(makeClient(s3.settings), { bucket: 'flan', prefix: 'gen' }, 3)).map((k) =>
      k.key.slice('gen/'.length),
    ),
  );
const shardFiles = (dir: string): Map<string, string> => {
  const r = IndexReader.open(dir, { s3: s3.settings });
  try {
    return new Map(r.manifest.shards.map((s) => [s.source, s.file]));
  } finally {
    r.close();
  }
};

describe('republishing to an s3:// prefix', () => {
  it('deletes the files of the publication before the previous one, keeps the previous one readable, and leaves other objects alone', async () => {
    const corpus = join(base, 'corpus');
    const stage = join(base, 'stage');
    const out = 's3://flan/gen';
    const a = writeShard(corpus, shardPath('01_A', 'a.jsonl'), [{ uuid: 'a1' }, { uuid: 'a2' }]);
    const b = shardPath('02_B', 'b.jsonl');
    const publish = async (gen: number): Promise<Map<string, string>> => {
      writeShard(corpus, b, [{ uuid: `b${gen}`, output: `generation ${gen}` }]);
      const s = await buildIndexTo({ corpus, out, stage, workers: 1, s3: s3.settings });
      expect(s.published).toBeDefined();
      return shardFiles(out);
    };
    const g1 = await publish(1);
    await makeClient(s3.settings).send(
      new PutObjectCommand({ Bucket: 'flan', Key: 'gen/notes/README.txt', Body: 'not an index file' }),
    );
    const g2 = await publish(2);
    expect(g2.get(a)).toBe(g1.get(a));
    expect(g2.get(b)).not.toBe(g1.get(b));
    // Generation 1's file for b stays: a replica opened on generation 1 still reads it.
    expect(await keys()).toContain(g1.get(b));

    const onG2 = IndexReader.open(out, { s3: s3.settings });
    try {
      const g3 = await publish(3);
      const now = await keys();
      expect(now).not.toContain(g1.get(b));
      for (const f of [...g2.values(), ...g3.values(), 'notes/README.txt', 'manifest.msgpack'])
        expect(now).toContain(f);
      // The replica on generation 2 reads its shard of b after generation 3 went up.
      const i = onG2.manifest.shards.findIndex((s) => s.source === b);
      expect(onG2.uuid(i, 0)).toBe('b2');
      const r3 = IndexReader.open(out, { s3: s3.settings });
      expect(
        r3.uuid(
          r3.manifest.shards.findIndex((s) => s.source === b),
          0,
        ),
      ).toBe('b3');
      r3.close();
    } finally {
      onG2.close();
    }
  });
});
