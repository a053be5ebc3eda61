import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { buildPart, mergeParts } from '../../src/index/build-part.js';
import { findDuplicateUuids } from '../../src/index/duplicate-uuids.js';
import { QUARANTINE_FILE } from '../../src/index/format.js';
import { ExampleTable } from '../../src/index/example-table.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { readManifest } from '../../src/index/manifest-io.js';
import { ShardFiles } from '../../src/index/shard-access.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { TextTokenizer } from '../../src/tokenize/text-tokenizer.js';
import { indexTree as tree } from '../helpers/index-tree.js';
import { drain, openCore, segments, take, trainSpec } from '../helpers/core-streams.js';
import { bareConfig, shardPath, writeClip, writeShard, type TinyRecord } from '../helpers/tiny-corpus.js';

/**
 * uuids are unique within the corpus (docs/corpus.md). A repeat is quarantined at its second
 * occurrence in corpus order (shard path, then line), naming the first; one inside a shard is
 * caught while the shard is built, one across shards when every shard exists (in the one-process
 * build and at the merge of a partitioned one), and then its shard file is already written: the
 * index must still never serve it, and count it nowhere but in the quarantine.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-dupes-'));
const corpus = join(base, 'corpus');
const single = join(base, 'single');
const config = bareConfig(join(base, 'config'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Every repeated copy says so in its output: a served one would show up in the decoded tokens. */
const COPY = 'DUPLICATE COPY';
const rec = (uuid: string, k: number, over: Partial<TinyRecord> = {}): TinyRecord => ({
  uuid,
  split: k % 5 === 0 ? ['dev'] : ['train'],
  ...over,
});
const copy = (uuid: string, over: Partial<TinyRecord> = {}): TinyRecord => ({
  uuid,
  output: `${COPY} of ${uuid}`,
  ...over,
});
const ALPHA = shardPath('01_Alpha', 'part-0.jsonl');
const BETA = shardPath('02_Beta', 'part-0.jsonl');
const GAMMA = shardPath('03_Gamma', 'part-0.jsonl');
const ONLY_COPIES = 'speech/Copies/Only';

function writeCorpus(dir: string): void {
  const alpha = Array.from({ length: 30 }, (_, k) => rec(`a-${k}`, k));
  // Line 31: a repeat inside its own shard (of line 4).
  writeShard(dir, ALPHA, [...alpha, copy('a-3')]);
  const beta = Array.from({ length: 30 }, (_, k) => rec(`b-${k}`, k));
  // Lines 3, 11 and 21 (1-based) repeat Alpha's uuids, under train, dev and two splits.
  beta.splice(2, 0, copy('a-7'));
  beta.splice(10, 0, copy('a-10', { split: ['dev'] }));
  beta.splice(20, 0, copy('a-12', { split: ['train', 'test'] }));
  writeShard(dir, BETA, beta);
  const gamma = Array.from({ length: 20 }, (_, k) => rec(`c-${k}`, k));
  // A third occurrence of a-7 (names Alpha's, the first), and a task of nothing but repeats.
  gamma.splice(
    5,
    0,
    copy('a-7'),
    copy('b-4', { major: 'Copies', minor: 'Only' }),
    copy('b-9', { major: 'Copies', minor: 'Only', split: ['dev'] }),
  );
  writeShard(dir, GAMMA, gamma);
}

/** Alpha and Beta hold 24 train and 6 dev records of their own, Gamma 16 and 4. */
const UNIQUE_TRAIN = 24 + 24 + 16;
const UNIQUE_DEV = 6 + 6 + 4;

interface Entry {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
  readonly detail: string;
}
const report = (dir: string): Entry[] =>
  readFileSync(join(dir, QUARANTINE_FILE), 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Entry);

beforeAll(async () => {
  writeCorpus(corpus);
  await buildIndex({ corpus, out: single, workers: 2 });
});

describe('duplicate uuids across the corpus', () => {
  it('quarantines every second occurrence in corpus order, naming the first as file:line', () => {
    const m = readManifest(single);
    expect(m.quarantineByReason).toEqual({ duplicate_uuid: 7 });
    expect(m.quarantined).toBe(7);
    expect(m.records).toBe(UNIQUE_TRAIN + UNIQUE_DEV);
    // Six found across shards; a-12 is listed under train and test: two list entries for one record.
    expect(m.exclusions.records).toBe(6);
    expect(m.exclusions.entries).toBe(7);
    expect(report(single)).toEqual([
      { file: ALPHA, line: 31, reason: 'duplicate_uuid', detail: `uuid a-3 already appears at ${ALPHA}:4` },
      { file: BETA, line: 3, reason: 'duplicate_uuid', detail: `uuid a-7 already appears at ${ALPHA}:8` },
      { file: BETA, line: 11, reason: 'duplicate_uuid', detail: `uuid a-10 already appears at ${ALPHA}:11` },
      { file: BETA, line: 21, reason: 'duplicate_uuid', detail: `uuid a-12 already appears at ${ALPHA}:13` },
      { file: GAMMA, line: 6, reason: 'duplicate_uuid', detail: `uuid a-7 already appears at ${ALPHA}:8` },
      { file: GAMMA, line: 7, reason: 'duplicate_uuid', detail: `uuid b-4 already appears at ${BETA}:6` },
      { file: GAMMA, line: 8, reason: 'duplicate_uuid', detail: `uuid b-9 already appears at ${BETA}:12` },
    ]);
  });

  it('counts only what is served: task counts, dataset table and a task of nothing but repeats', () => {
    const r = IndexReader.open(single);
    try {
      const byPath = new Map(r.tasks.map((t) => [t.path, t]));
      expect(byPath.get(ONLY_COPIES)?.counts).toEqual([0, 0, 0]);
      expect(byPath.get(ONLY_COPIES)?.runs).toEqual([[], [], []]);
      expect([byPath.get(ONLY_COPIES)?.textTokens, byPath.get(ONLY_COPIES)?.audioTokens]).toEqual([0, 0]);
      const trivia = byPath.get('speech/TextQA/Trivia')!;
      expect(trivia.counts).toEqual([UNIQUE_TRAIN, UNIQUE_DEV, 0]);
      expect(r.datasets.get('02_Beta')?.tasks.get('speech/TextQA/Trivia')).toEqual([24, 6, 0]);
      expect(r.datasets.get('03_Gamma')?.tasks.get(ONLY_COPIES)).toEqual([0, 0, 0]);
      // The lists a stream walks hold the first occurrences only.
      const served = trivia.runs[0]!.flatMap(([s, local]) => Array.from(r.list(s, local, 0), (row) => r.uuid(s, row)));
      expect(served).toHaveLength(UNIQUE_TRAIN);
      expect(new Set(served).size).toBe(UNIQUE_TRAIN);
    } finally {
      r.close();
    }
  });

  it('ExampleTable.locate walks the same lists: every position of every task, runs with and without left-out repeats', () => {
    const r = IndexReader.open(single);
    try {
      let withRepeats = 0;
      for (const split of [0, 1] as const) {
        const table = new ExampleTable(r, split);
        for (const t of r.tasks) {
          // The task's records in order, run by run, from the reader's lists (repeats left out).
          const expected = (t.runs[split] ?? []).flatMap(([s, local]) => {
            const list = r.list(s, local, split);
            if (list.length !== r.shard(s).tasks[local]!.counts[split]) withRepeats++;
            return Array.from(list, (row) => `${s}:${row}`);
          });
          expect(table.size(t.id)).toBe(expected.length);
          expect(
            expected.map((_, i) => table.locate(t.id, i)).map((l) => `${l.shard}:${l.row}`),
            t.path,
          ).toEqual(expected);
          for (const i of [-1, expected.length, expected.length + 3])
            expect(() => table.locate(t.id, i)).toThrow(`task ${t.id} has no record ${i}`);
        }
      }
      // Beta's and Gamma's lists hold repeats (left out through listAt); Alpha's are read directly.
      expect(withRepeats).toBeGreaterThan(0);
    } finally {
      r.close();
    }
  });

  describe('streams', () => {
    let core: DataServiceCore;
    const tok = TextTokenizer.load('qwen3');
    beforeAll(async () => {
      core = await openCore(single, config);
    });
    afterAll(() => core.catalog.reader.close());

    it('an evaluation stream serves every first occurrence exactly once and no repeat', async () => {
      const { batches } = drain(core.open({ spec: { split: 'dev', batchSize: 4, seqLen: 512, packing: 'none' } }));
      const uuids = batches.flatMap((b) => b.uuids);
      expect(uuids).toHaveLength(UNIQUE_DEV);
      expect(new Set(uuids).size).toBe(UNIQUE_DEV);
      for (const b of batches) for (const seg of segments(b)) expect(await tok.decode(seg.tokens)).not.toContain(COPY);
    });

    it('train streams never serve a repeat, in any packing', async () => {
      for (const packing of ['none', 'packed', 'multiturn']) {
        const { batches, end } = take(core.open({ spec: trainSpec({ packing, batchSize: 8, seqLen: 512 }) }), 40);
        expect(end, packing).toBeUndefined();
        const uuids = new Set(batches.flatMap((b) => b.uuids));
        expect(uuids.size, packing).toBe(UNIQUE_TRAIN);
        for (const b of batches)
          expect(
            await tok.decode(new Int32Array(b.tokens.buffer, b.tokens.byteOffset, b.tokens.byteLength / 4)),
            packing,
          ).not.toContain(COPY);
      }
    });

    it('a mixture naming only the task of repeats is refused: it has nothing to serve', () => {
      expect(() => take(core.open({ spec: trainSpec({ mixture: { weights: { [ONLY_COPIES]: 1 } } }) }), 1)).toThrow(
        /speech\/Copies\/Only.*matches no task with train records/,
      );
    });
  });

  it('a partitioned build (parts in shuffled order) equals the one-process build, file for file', async () => {
    for (const N of [2, 3]) {
      const out = join(base, `parts${N}`);
      for (const i of N === 2 ? [1, 0] : [2, 0, 1])
        await buildPart({ corpus, out, workers: 1, part: { index: i, count: N } });
      await mergeParts({ corpus, out });
      expect(tree(out)).toEqual(tree(single));
    }
  });

  it('in bounded memory: a dedupe pass forced through many tiny spilled buckets finds the same duplicates', () => {
    const m = readManifest(single);
    const dir = join(base, 'spill');
    rmSync(dir, { recursive: true, force: true });
    cpSync(single, dir, { recursive: true });
    const files = new ShardFiles(dir, m.shards);
    try {
      const whole = findDuplicateUuids(files, m.shards);
      // Two quads per bucket: about 50 buckets, each through its own temporary file.
      const tiny = findDuplicateUuids(files, m.shards, 2);
      expect(Array.from(tiny)).toEqual(Array.from(whole));
      expect(whole.length / 4).toBe(6);
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      files.close();
    }
  });

  it('an incremental rebuild after the first occurrence is gone serves the former repeat (nothing is baked into reused shards)', async () => {
    const c = join(base, 'corpus-edit');
    const out = join(base, 'edit');
    cpSync(corpus, c, { recursive: true });
    cpSync(single, out, { recursive: true });
    // Alpha without a-7: Beta's copy (line 3) is now the first, and Gamma's names it.
    const alpha = readFileSync(join(c, ALPHA), 'utf8')
      .split('\n')
      .filter((l) => !l.includes('"uuid":"a-7"'));
    writeFileSync(join(c, ALPHA), alpha.join('\n'));
    const s = await buildIndex({ corpus: c, out, workers: 1 });
    expect(s.shardsBuilt).toBe(1);
    expect(s.manifest.quarantineByReason).toEqual({ duplicate_uuid: 6 });
    expect(report(out).find((e) => e.file === GAMMA && e.line === 6)?.detail).toBe(
      `uuid a-7 already appears at ${BETA}:3`,
    );
    expect(report(out).some((e) => e.file === BETA && e.line === 3)).toBe(false);
    const r = IndexReader.open(out);
    try {
      const trivia = r.tasks.find((t) => t.path === 'speech/TextQA/Trivia')!;
      const served = trivia.runs[0]!.flatMap(([sh, local]) =>
        Array.from(r.list(sh, local, 0), (row) => r.uuid(sh, row)),
      );
      expect(served.filter((u) => u === 'a-7')).toHaveLength(1);
      expect(served).toHaveLength(UNIQUE_TRAIN);
    } finally {
      r.close();
    }
    expect(existsSync(join(out, readManifest(single).exclusions.file))).toBe(false);
  });

  it('the audio groups leave a repeat out, so no conversation takes it as a turn', async () => {
    const c = join(base, 'corpus-clips');
    const out = join(base, 'clips');
    const clip = `<|SOA|>${writeClip(c, '01_Clips', 'shared', 2, 12)}<|EOA|>`;
    writeShard(
      c,
      shardPath('01_Clips', 'part-0.jsonl'),
      Array.from({ length: 6 }, (_, k) => ({ uuid: `x-${k}`, input: k === 1 ? `Listen: ${clip}` : undefined })),
    );
    // Another task: a record sharing the clip (a conversation partner) and, on line 4, a repeat of x-1 carrying it too.
    const shared = Array.from({ length: 6 }, (_, k): TinyRecord => ({
      uuid: `s-${k}`,
      major: 'Shared',
      minor: 'Clip',
      input: k === 2 ? `Hear: ${clip}` : undefined,
    }));
    shared.splice(3, 0, copy('x-1', { major: 'Shared', minor: 'Clip', input: `Again: ${clip}` }));
    writeShard(c, shardPath('02_Shared', 'part-0.jsonl'), shared);
    await buildIndex({ corpus: c, out, workers: 1 });
    const r = IndexReader.open(out);
    try {
      expect(r.manifest.quarantineByReason).toEqual({ duplicate_uuid: 1 });
      const groups = r.audioGroups();
      const members = Array.from({ length: groups.length / 4 }, (_, q) =>
        r.uuid(groups[q * 4 + 2]!, groups[q * 4 + 3]!),
      );
      expect(members).toEqual(['x-1', 's-2']);
      // The repeat's clip is not counted in its task's audio: only s-2's is.
      const sharedTask = r.tasks.find((t) => t.path === 'speech/Shared/Clip')!;
      expect(sharedTask.audioFrames).toBe(12);
      expect(sharedTask.audioTokens).toBe(2 * 12 + 2);
    } finally {
      r.close();
    }
    const core = await openCore(out, bareConfig(join(base, 'clips-config')));
    const tok = TextTokenizer.load('qwen3');
    try {
      const { batches } = take(
        core.open({ spec: trainSpec({ packing: 'multiturn', batchSize: 4, seqLen: 1024 }) }),
        20,
      );
      expect(new Set(batches.flatMap((b) => b.uuids))).toEqual(
        new Set([...Array.from({ length: 6 }, (_, k) => `x-${k}`), ...Array.from({ length: 6 }, (_, k) => `s-${k}`)]),
      );
      for (const b of batches)
        expect(
          await tok.decode(new Int32Array(b.tokens.buffer, b.tokens.byteOffset, b.tokens.byteLength / 4)),
        ).not.toContain(COPY);
    } finally {
      core.catalog.reader.close();
    }
  });
});
