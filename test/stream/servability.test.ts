import { beforeAll, describe, expect, inject, it } from 'vitest';
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
  facts = new IndexFacts(core.reader);
  tpl = await loadChatml(core.reader.manifest.vocab.tokenizer);
  for (const t of core.reader.tasks) {
    if (t.unseen) continue; // held out by the default set
    fitting.set(t.path, new Set(facts.splitList(t.id).filter((u) => singleLength(tpl, facts.get(u)) <= L)));
  }
});

describe('servability from the index', () => {
  it('a one-task mixture over a task with 1-3 servable records never ends (packing none)', () => {
    const few = [...fitting].filter(([, s]) => s.size >= 1 && s.size <= 3);
    expect(few.length).toBeGreaterThanOrEqual(10);
    for (const [path, ok] of few) {
      const { batches, end } = take(core.open({ spec: trainSpec({ packing: 'none', batchSize: 2, seqLen: L, mixture: { weights: { [path]: 1 } } }) }), 120);
      expect(end, path).toBeUndefined();
      expect(batches, path).toHaveLength(120);
      const served = batches.flatMap((b) => b.uuids);
      expect(served.every((u) => ok.has(u)), path).toBe(true);
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

  it('a task with no servable record is refused when the stream opens, naming it', () => {
    const none = [...fitting].find(([, s]) => s.size === 0);
    expect(none).toBeDefined();
    const [path] = none!;
    expect(() => core.open({ spec: trainSpec({ packing: 'none', batchSize: 2, seqLen: L, mixture: { weights: { [path]: 1 } } }) })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(path) as unknown }),
    );
  });
});
