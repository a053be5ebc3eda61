import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { blockShapes, BLOCK_TOKENS } from '../../src/stream/shuffle-spec.js';
import { TaskWalker } from '../../src/mix/task-walker.js';
import { SegmentLayout } from '../../src/pack/segment-layout.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { loadChatml, singleLength, type Chatml } from '../helpers/chatml.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';

/**
 * Servability is decided from the index, never from a draw budget: a task whose few servable
 * records sit at the end of one epoch's permutation and the start of the next must keep serving.
 * On the sample corpus at seq_len 512 (drop) many tasks have 1–3 records short enough; the old
 * budget of size + 1 rejections ended such streams with FAILED_PRECONDITION within a few batches.
 */
const L = 512;
let core: DataServiceCore;
let facts: IndexFacts;
let tpl: Chatml;
/** Per trainable task, the uuids of its train records that fit L, by the test's own ChatML lengths. */
const fitting = new Map<string, Set<string>>();

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
  tpl = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer);
  for (const t of core.catalog.reader.tasks) {
    if (t.unseen) continue; // held out by the default set
    fitting.set(t.path, new Set(facts.splitList(t.id).filter((u) => singleLength(tpl, facts.get(u)) <= L)));
  }
});

describe('servability from the index', () => {
  it('a one-task mixture over a task with 1-3 servable records never ends (packing none)', () => {
    const few = [...fitting].filter(([, s]) => s.size >= 1 && s.size <= 3);
    expect(few.length).toBeGreaterThanOrEqual(10);
    for (const [path, ok] of few) {
      const { batches, end } = take(
        core.open({
          spec: trainSpec({ packing: 'none', batchSize: 2, seqLen: L, mixture: { weights: { [path]: 1 } } }),
        }),
        120,
      );
      expect(end, path).toBeUndefined();
      expect(batches, path).toHaveLength(120);
      const served = batches.flatMap((b) => b.uuids);
      expect(
        served.every((u) => ok.has(u)),
        path,
      ).toBe(true);
      // Each epoch serves each servable record once: after 240 draws, every one was served.
      expect(new Set(served), path).toEqual(ok);
    }
  });

  it('a natural mixture with batch_size 2 keeps serving past many epochs of the rarest tasks (packed)', () => {
    const { batches, end } = take(core.open({ spec: trainSpec({ packing: 'packed', batchSize: 2, seqLen: L }) }), 400);
    expect(end).toBeUndefined();
    expect(batches).toHaveLength(400);
    const servable = new Set([...fitting.values()].flatMap((s) => [...s]));
    expect(batches.flatMap((b) => b.uuids).every((u) => servable.has(u))).toBe(true);
  });

  it('a rare-fit task is walked straight to its servable records: the records examined stay a few per row, and the stream is the rejection walk', () => {
    // The task whose servable records are rarest: rejection examined size/servable records per row.
    const [path, ok] = [...fitting]
      .filter(([, s]) => s.size >= 1)
      .sort(
        ([a, x], [b, y]) =>
          facts.splitList(core.catalog.reader.tasks.find((t) => t.path === b)!.id).length / y.size -
          facts.splitList(core.catalog.reader.tasks.find((t) => t.path === a)!.id).length / x.size,
      )[0]!;
    const task = core.catalog.reader.tasks.find((t) => t.path === path)!;
    const size = facts.splitList(task.id).length;
    expect(size / ok.size).toBeGreaterThan(16);
    const rows = 2 * 150;
    const fit = vi.spyOn(SegmentLayout.prototype, 'fit');
    let batches;
    let examined;
    try {
      batches = take(
        core.open({
          spec: trainSpec({
            packing: 'none',
            batchSize: 2,
            seqLen: L,
            shuffle: 'blocks',
            shuffleWindow: 64,
            mixture: { weights: { [path]: 1 } },
          }),
        }),
        rows / 2,
      ).batches;
      examined = fit.mock.calls.length;
    } finally {
      fit.mockRestore();
    }
    // Two scans of the task (is anything servable; which records are) and about one record per row.
    expect(examined).toBeLessThanOrEqual(2 * size + 2 * rows + 64);
    // The same records in the same order as drawing and giving back every record (the task's
    // seeded order, here the default blocks order, epoch after epoch), with every record passed
    // over counted as dropped.
    const table = core.catalog.table(0);
    const sizes = core.catalog.reader.tasks.map((t) => (t.id === task.id ? table.size(t.id) : 0));
    const walk = new TaskWalker(
      sizes,
      0,
      undefined,
      blockShapes({ name: 'blocks', window: 64, blockTokens: BLOCK_TOKENS }, core.catalog.reader.tasks),
    );
    const expected: string[] = [];
    let dropped = 0;
    while (expected.length < rows) {
      const loc = table.locate(task.id, walk.next(task.id));
      const uuid = core.catalog.reader.uuid(loc.shard, loc.row);
      if (ok.has(uuid)) expected.push(uuid);
      else dropped++;
    }
    expect(batches.flatMap((b) => b.uuids)).toEqual(expected);
    expect(batches.at(-1)!.stats.taskDropped[task.id]).toBe(dropped);
  });

  it('a task with no servable record is refused when the stream opens, naming it', () => {
    const none = [...fitting].find(([, s]) => s.size === 0);
    expect(none).toBeDefined();
    const [path] = none!;
    expect(() =>
      core.open({ spec: trainSpec({ packing: 'none', batchSize: 2, seqLen: L, mixture: { weights: { [path]: 1 } } }) }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(path) as unknown }));
  });
});
