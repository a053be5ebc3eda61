import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { heldoutTasks, named } from '../helpers/heldout-facts.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { drain, openCore, take } from '../helpers/core-streams.js';
import { linkTree } from '../helpers/link-tree.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

/**
 * Audio-FLAN's `split` is a list. The sample corpus gives every record one split; this copy gives
 * records of a held-out cluster and of a trained task several, so evaluation streams must serve a
 * record listed under several splits exactly once.
 */
const SPLIT_SETS = [['train', 'dev'], ['dev', 'test'], ['train', 'dev', 'test'], ['train', 'test'], ['test']];
const REWRITTEN = new Set(['Single Music Reasoning', 'Multiple Music Reasoning', 'Music Caption']);
const MUSIC = named(
  'music-reasoning',
  ['music/Single Music Reasoning', 'music/Multiple Music Reasoning'],
  false,
  false,
);

let dir: string;
let core: DataServiceCore;
let facts: IndexFacts;

function rewrite(root: string): number {
  let n = 0;
  for (const ent of readdirSync(root, { withFileTypes: true, recursive: true })) {
    const file = join(ent.parentPath, ent.name);
    if (!ent.isFile() || !/\.jsonl(\.gz)?$/.test(ent.name)) continue;
    const gz = ent.name.endsWith('.gz');
    const text = (gz ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString('utf8');
    const lines = text.split('\n').map((line) => {
      if (!line) return line;
      const rec = JSON.parse(line) as { split: string[]; task_type: { major: string[] } };
      if (!REWRITTEN.has(rec.task_type.major[0] ?? '')) return line;
      rec.split = SPLIT_SETS[n++ % SPLIT_SETS.length]!;
      return JSON.stringify(rec);
    });
    const out = Buffer.from(lines.join('\n'), 'utf8');
    writeFileSync(file, gz ? gzipSync(out) : out);
  }
  return n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flanstream-multisplit-'));
  // rewrite() writes the shards under metadata/: those are copies, the rest links.
  linkTree(inject('sampleCorpus'), join(dir, 'corpus'), (f) => f.startsWith('metadata'));
  expect(rewrite(join(dir, 'corpus', 'metadata'))).toBeGreaterThan(50);
  await buildIndex({
    corpus: join(dir, 'corpus'),
    out: join(dir, 'index'),
    workers: 1,
    audioRoots: [SAMPLE_AUDIO_ROOT],
  });
  core = await openCore(join(dir, 'index'));
  facts = new IndexFacts(core.catalog.reader);
});

afterAll(() => {
  core?.catalog.reader.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('records listed under several splits', () => {
  it('the index lists them under each of their splits', () => {
    const multi = [...facts.byUuid.values()].filter((r) => (r.splits & (r.splits - 1)) !== 0);
    expect(multi.length).toBeGreaterThan(30);
  });

  const cases = [
    {
      label: 'heldout, scope all',
      split: 'heldout',
      heldout: MUSIC.raw,
      splits: ['train', 'dev', 'test'] as const,
      held: true,
    },
    {
      label: 'heldout, scope test',
      split: 'heldout',
      heldout: { selectors: MUSIC.selectors as string[], scope: 'test' },
      splits: ['test'] as const,
      held: true,
    },
    { label: 'test', split: 'test', heldout: MUSIC.raw, splits: ['test'] as const, held: false },
    { label: 'dev', split: 'dev', heldout: MUSIC.raw, splits: ['dev'] as const, held: false },
  ];

  it.each(
    cases.flatMap((c) =>
      [1, 3].flatMap((W) => ['none', 'packed', 'examples'].map((packing) => [c.label, W, packing, c] as const)),
    ),
  )('%s, W = %i, %s: each record exactly once', (_, W, packing, c) => {
    const held = heldoutTasks(facts, MUSIC);
    const tasks = new Set(core.catalog.reader.tasks.map((t) => t.id).filter((t) => held.has(t) === c.held));
    const expected = facts.uuidsOf(tasks, [...c.splits]);
    const seen: string[] = [];
    let total = 0;
    for (let rank = 0; rank < W; rank++) {
      const { batches, end } = drain(
        core.open({
          spec: { split: c.split, batchSize: 4, seqLen: 4096, packing, rank, worldSize: W, heldout: c.heldout },
        }),
      );
      seen.push(...batches.flatMap((b) => (packing === 'examples' ? b.examples.map((e) => e.uuid) : b.uuids)));
      total += end.examples;
      expect(end.totalExamples).toBe(expected.size);
    }
    expect(seen).toHaveLength(expected.size);
    expect(new Set(seen)).toEqual(expected);
    expect(total).toBe(expected.size);
  });

  it('train serves a multi-split record only if it lists train, and never a held-out one', () => {
    const held = heldoutTasks(facts, MUSIC);
    const batches = take(
      core.open({
        spec: {
          split: 'train',
          batchSize: 16,
          seqLen: 4096,
          packing: 'none',
          mixture: { weights: { 'music/Music Caption': 1 } },
          heldout: MUSIC.raw,
        },
      }),
      10,
    ).batches;
    const served = new Set(batches.flatMap((b) => b.uuids));
    const train = facts.uuidsOf(
      new Set(core.catalog.reader.tasks.filter((t) => t.path.startsWith('music/Music Caption/')).map((t) => t.id)),
      ['train'],
    );
    expect(served).toEqual(train);
    for (const u of served) expect(held.has(facts.get(u).task)).toBe(false);
  });
});
