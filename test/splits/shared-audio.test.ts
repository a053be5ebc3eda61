import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { TaskWalker } from '../../src/mix/task-walker.js';
import { blockShapes, BLOCK_TOKENS } from '../../src/stream/shuffle-spec.js';
import { HELDOUT_CASES, heldoutTasks, inline, sharingAudio, type HeldoutCase } from '../helpers/heldout-facts.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { openCore, take } from '../helpers/core-streams.js';

let core: DataServiceCore;
let facts: IndexFacts;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
});

const SETS: HeldoutCase[] = [
  ...HELDOUT_CASES.filter((c) => c.excludeSharedAudio),
  inline('inline: Speaker Recognition + unseen, shared audio excluded', ['speech/Speaker Recognition'], true, true),
  inline('inline: Global MIR minor, shared audio excluded', ['music/Global MIR/Genre Classification'], false, true),
];
/** Holding out Speech Recognition removes every train record of speech/Speech Generation/Spontaneous TTS. */
const EMPTIES_A_TASK = inline(
  'inline: Speech Recognition, shared audio excluded',
  ['speech/Speech Recognition'],
  false,
  true,
);

describe('exclude_shared_audio removes exactly the train records sharing a clip (id or codes) with a held-out record', () => {
  it.each(SETS.map((c) => [c.label, c] as const))(
    '%s: the filter equals the set computed from the index spans',
    (_, c) => {
      const session = core.open({ spec: { split: 'train', batchSize: 1, seqLen: 4096, heldout: c.raw } });
      const held = heldoutTasks(facts, c);
      const want = sharingAudio(facts, held);
      const filter = core.catalog.guard(session.heldout)!;
      const got = new Set<string>();
      for (const r of facts.byUuid.values())
        if (!held.has(r.task) && (r.splits & 1) !== 0 && filter.excluded(r.shard, r.row)) got.add(r.uuid);
      expect(got).toEqual(want);
    },
  );

  it.each(SETS.map((c) => [c.label, c] as const))(
    "%s: a stream walks each task's permutation skipping exactly those records",
    (_, c) => {
      const held = heldoutTasks(facts, c);
      const removed = sharingAudio(facts, held);
      const seed = 3;
      // Packing none and the natural mixture: after 4 × the train size every task walked its records at least once.
      const trainTotal = core.catalog.reader.tasks.reduce((n, t) => n + (held.has(t.id) ? 0 : t.counts[0]), 0);
      // The blocks order with a small window (several windows per task): exclusions hold in it too.
      const batches = take(
        core.open({
          spec: {
            split: 'train',
            batchSize: 100,
            seqLen: 8192,
            packing: 'none',
            seed,
            heldout: c.raw,
            shuffle: 'blocks',
            shuffleWindow: 2,
          },
        }),
        Math.ceil((4 * trainTotal) / 100),
      ).batches;
      const shapes = blockShapes({ name: 'blocks', window: 2, blockTokens: BLOCK_TOKENS }, core.catalog.reader.tasks);
      const served = new Map<number, string[]>();
      for (const b of batches)
        b.uuids.forEach((u, k) => served.set(b.turnTask[k]!, [...(served.get(b.turnTask[k]!) ?? []), u]));
      let skipped = 0;
      for (const t of core.catalog.reader.tasks.map((x) => x.id)) {
        const list = facts.splitList(t);
        const mine = served.get(t) ?? [];
        if (held.has(t) || list.every((u) => removed.has(u))) {
          expect(mine, core.catalog.reader.tasks[t]!.path).toHaveLength(0);
          continue;
        }
        // Replay the task's walk: removed records are skipped, every other one is served in order.
        const walker = new TaskWalker(
          core.catalog.reader.tasks.map((x) => (x.id === t ? list.length : 0)),
          seed,
          undefined,
          shapes,
        );
        let walked = 0;
        for (const u of mine) {
          let next = list[walker.next(t)]!;
          walked++;
          while (removed.has(next)) {
            skipped++;
            next = list[walker.next(t)]!;
            walked++;
          }
          expect(next).toBe(u);
        }
        expect(walked, core.catalog.reader.tasks[t]!.path).toBeGreaterThanOrEqual(list.length);
      }
      expect(skipped > 0).toBe(removed.size > 0);
      // Removed records are not over-long drops.
      expect(batches[batches.length - 1]!.stats.dropped).toBe(0);
    },
  );

  // Open problem (reported): a task left with no train record at all keeps its natural-mixture
  // weight, and the stream fails with FAILED_PRECONDITION whenever the sampler first picks it.
  it('a task whose every train record is removed gets no weight, and the stream serves', () => {
    const held = heldoutTasks(facts, EMPTIES_A_TASK);
    const removed = sharingAudio(facts, held);
    const empty = core.catalog.reader.tasks
      .filter((t) => !held.has(t.id) && facts.splitList(t.id).every((u) => removed.has(u)))
      .map((t) => t.id);
    expect(empty.length).toBeGreaterThan(0);
    const batches = take(
      core.open({
        spec: { split: 'train', batchSize: 100, seqLen: 8192, packing: 'none', heldout: EMPTIES_A_TASK.raw },
      }),
      40,
    ).batches;
    for (const t of empty) expect(batches[0]!.stats.taskTarget[t]).toBe(0);
  });

  it('without the flag nothing sharing audio is removed', () => {
    const c = inline('no exclusion', ['speech/Speech Caption'], false, false);
    const removed = sharingAudio(facts, heldoutTasks(facts, c));
    const batches = take(
      core.open({ spec: { split: 'train', batchSize: 100, seqLen: 8192, packing: 'none', heldout: c.raw } }),
      40,
    ).batches;
    expect(batches.flatMap((b) => b.uuids).some((u) => removed.has(u))).toBe(true);
  });
});
