import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawHeldout } from '../../src/stream/stream-request.js';
import type { WireBatch, WireEnd } from '../../src/stream/wire-types.js';
import { heldoutTasks, named } from '../helpers/heldout-facts.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { drain, openCore, take, type Spec } from '../helpers/core-streams.js';

let core: DataServiceCore;
let facts: IndexFacts;
let all: Set<number>;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
  all = new Set(core.catalog.reader.tasks.map((t) => t.id));
});

/** The evaluation streams under test and the records each must serve, computed from the index. */
interface EvalCase {
  readonly label: string;
  readonly split: 'heldout' | 'test' | 'dev';
  readonly heldout: RawHeldout;
  expected(): Set<string>;
}

const MUSIC = named(
  'music-reasoning',
  ['music/Single Music Reasoning', 'music/Multiple Music Reasoning'],
  false,
  false,
);
const UNSEEN = named('unseen-flag', [], true, false);
const except = (held: Set<number>): Set<number> => new Set([...all].filter((t) => !held.has(t)));

const CASES: EvalCase[] = [
  {
    label: 'heldout, scope all',
    split: 'heldout',
    heldout: MUSIC.raw,
    expected: () => facts.uuidsOf(heldoutTasks(facts, MUSIC), ['train', 'dev', 'test']),
  },
  {
    label: 'heldout, scope test',
    split: 'heldout',
    heldout: { ...MUSIC.raw, name: undefined, selectors: MUSIC.selectors as string[], unseenFlag: true, scope: 'test' },
    expected: () => facts.uuidsOf(new Set([...heldoutTasks(facts, MUSIC), ...heldoutTasks(facts, UNSEEN)]), ['test']),
  },
  {
    label: 'test',
    split: 'test',
    heldout: UNSEEN.raw,
    expected: () => facts.uuidsOf(except(heldoutTasks(facts, UNSEEN)), ['test']),
  },
  {
    label: 'dev',
    split: 'dev',
    heldout: MUSIC.raw,
    expected: () => facts.uuidsOf(except(heldoutTasks(facts, MUSIC)), ['dev']),
  },
];

/** Uuids a batch serves: its segments' turns, or its evaluation items for packing "examples". */
const uuidsOf = (b: WireBatch): string[] => (b.examples.length > 0 ? b.examples.map((e) => e.uuid) : b.uuids);

function evalSpec(c: EvalCase, packing: string, rank: number, worldSize: number): Spec {
  return { split: c.split, batchSize: 4, seqLen: 4096, packing, seed: 0, rank, worldSize, heldout: c.heldout };
}

describe('every evaluation example exactly once across ranks, then per-task counts', () => {
  const grid = CASES.flatMap((c) =>
    ['none', 'packed', 'examples'].flatMap((packing) => [1, 2, 3, 7].map((W) => [c.label, packing, W, c] as const)),
  );

  it.each(grid)('%s, %s, W = %i', (_, packing, W, c) => {
    const expected = c.expected();
    expect(expected.size).toBeGreaterThan(10);
    const perTask = core.catalog.reader.tasks.map(() => 0);
    for (const u of expected) perTask[facts.get(u).task]!++;
    const seen: string[] = [];
    const ends: WireEnd[] = [];
    for (let rank = 0; rank < W; rank++) {
      const { batches, end } = drain(core.open({ spec: evalSpec(c, packing, rank, W) }));
      const mine = batches.flatMap(uuidsOf);
      const counts = core.catalog.reader.tasks.map(() => 0);
      for (const u of mine) counts[facts.get(u).task]!++;
      expect(end.reason).toBe('complete');
      expect(end.taskExamples).toEqual(counts);
      expect(end.examples).toBe(mine.length);
      expect(end.taskDropped.every((n) => n === 0)).toBe(true);
      if (packing === 'examples')
        for (const b of batches) for (const e of b.examples) expect(e.task).toBe(facts.get(e.uuid).task);
      seen.push(...mine);
      ends.push(end);
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(expected);
    for (const end of ends) {
      expect(end.totalTaskExamples).toEqual(perTask);
      expect(end.totalExamples).toBe(expected.size);
    }
    const sum = perTask.map((_, t) => ends.reduce((n, e) => n + e.taskExamples[t]!, 0));
    expect(sum).toEqual(perTask);
  });

  it.each(['none', 'packed', 'examples'])(
    'an evaluation stream resumed mid-way serves the same items (%s)',
    (packing) => {
      for (const c of CASES) {
        const spec = evalSpec(c, packing, 1, 2);
        const full = drain(core.open({ spec }));
        const k = Math.floor(full.batches.length / 2);
        const rest = drain(core.open({ resume: { token: full.batches[k]!.resumeToken, rank: 1, worldSize: 2 } }));
        expect(rest.batches.map(uuidsOf)).toEqual(full.batches.slice(k + 1).map(uuidsOf));
        expect(rest.end.taskExamples).toEqual(full.end.taskExamples);
      }
    },
  );

  it('the unseen flag holds out exactly the tasks whose records say unseen; they are evaluated, never trained', () => {
    const unseen = new Set([...facts.byUuid.values()].filter((r) => r.unseen).map((r) => r.task));
    expect(unseen.size).toBeGreaterThan(0);
    const session = core.open({
      spec: { split: 'heldout', batchSize: 8, seqLen: 4096, packing: 'none', heldout: UNSEEN.raw },
    });
    expect(session.heldout.tasks).toEqual(unseen);
    const { batches } = drain(session);
    expect(new Set(batches.flatMap((b) => b.turnTask))).toEqual(unseen);
    const train = take(
      core.open({ spec: { split: 'train', batchSize: 16, seqLen: 4096, packing: 'packed', heldout: UNSEEN.raw } }),
      10,
    ).batches;
    for (const b of train) for (const t of b.turnTask) expect(unseen.has(t)).toBe(false);
  });
});
