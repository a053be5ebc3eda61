import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';
import { linkTree } from '../helpers/link-tree.js';
import { bareConfig, shardPath, writeShard, type TinyRecord } from '../helpers/tiny-corpus.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

/**
 * Records without audio are valid (docs/corpus.md allows text-only fields). A shard holding only such
 * records has an empty spans section; serving must not read a page of it.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-textonly-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const textRecords = (prefix: string, n: number): TinyRecord[] =>
  Array.from({ length: n }, (_, k) => ({ uuid: `${prefix}-${k}`, split: k % 5 === 0 ? ['dev'] : ['train'] }));

describe('text-only shards', () => {
  let textOnly: DataServiceCore;
  let mixed: DataServiceCore;
  beforeAll(async () => {
    const a = join(base, 'a');
    writeShard(join(a, 'corpus'), shardPath('01_TextQA', 'part-0.jsonl'), textRecords('t', 40));
    await buildIndex({ corpus: join(a, 'corpus'), out: join(a, 'index'), workers: 1 });
    textOnly = await openCore(join(a, 'index'), bareConfig(join(a, 'config')));

    const b = join(base, 'b');
    linkTree(inject('sampleCorpus'), join(b, 'corpus'));
    writeShard(join(b, 'corpus'), shardPath('99_TextQA', 'part-0.jsonl'), textRecords('m', 30));
    await buildIndex({ corpus: join(b, 'corpus'), out: join(b, 'index'), workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    mixed = await openCore(join(b, 'index'));
  });
  afterAll(() => {
    textOnly.catalog.reader.close();
    mixed.catalog.reader.close();
  });

  it('a corpus of text-only records serves train and eval streams', () => {
    for (const packing of ['packed', 'none', 'multiturn']) {
      const { batches, end } = take(textOnly.open({ spec: trainSpec({ packing, batchSize: 4, seqLen: 512 }) }), 30);
      expect(end, `packing ${packing}`).toBeUndefined();
      expect(batches).toHaveLength(30);
      expect(batches.flatMap((b) => b.uuids).every((u) => u.startsWith('t-'))).toBe(true);
    }
    const dev = take(textOnly.open({ spec: { split: 'dev', batchSize: 4, seqLen: 512, packing: 'none' } }), 100);
    expect(dev.end?.reason).toBeDefined();
    expect(new Set(dev.batches.flatMap((b) => b.uuids)).size).toBe(8);
  });

  it('a text-only shard beside audio shards serves its task', () => {
    const task = mixed.catalog.reader.tasks.find((t) => t.path === 'speech/TextQA/Trivia');
    expect(task).toBeDefined();
    const weights = { 'speech/TextQA/Trivia': 1, music: 1 };
    const { batches, end } = take(
      mixed.open({ spec: trainSpec({ batchSize: 4, seqLen: 2048, mixture: { weights } }) }),
      20,
    );
    expect(end).toBeUndefined();
    const uuids = batches.flatMap((b) => b.uuids);
    expect(uuids.some((u) => u.startsWith('m-'))).toBe(true);
    expect(uuids.some((u) => !u.startsWith('m-'))).toBe(true);
  });
});
