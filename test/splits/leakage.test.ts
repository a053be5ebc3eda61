import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { HELDOUT_CASES, heldoutTasks, sharingAudio } from '../helpers/heldout-facts.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';

let core: DataServiceCore;
let facts: IndexFacts;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
});

describe('no held-out record ever appears in a train stream', () => {
  const grid = HELDOUT_CASES.flatMap((c) =>
    [0, 1].flatMap((seed) => (['packed', 'multiturn'] as const).map((packing) => [c.label, seed, packing, c] as const)),
  );

  it.each(grid)('%s, seed %i, %s', (_, seed, packing, c) => {
    const held = heldoutTasks(facts, c);
    expect(held.size).toBeGreaterThan(0);
    const heldUuids = new Set([...facts.byUuid.values()].filter((r) => held.has(r.task)).map((r) => r.uuid));
    const shared = c.excludeSharedAudio ? sharingAudio(facts, held) : new Set<string>();
    const session = core.open({ spec: { ...trainSpec({ packing, seed, batchSize: 16 }), heldout: c.raw } });
    // The server resolves the same held-out tasks (FLAN cluster rule and unseen flag).
    expect([...session.heldout.tasks].sort((a, b) => a - b)).toEqual([...held].sort((a, b) => a - b));
    let served = 0;
    let turns = 0;
    for (const b of take(session, 12).batches) {
      for (const u of b.uuids) {
        expect(heldUuids.has(u), `${u} is a held-out record`).toBe(false);
        expect(shared.has(u), `${u} shares audio with a held-out record`).toBe(false);
        const r = facts.get(u);
        expect(r.splits & 1).toBe(1);
        expect(held.has(r.task)).toBe(false);
      }
      for (const t of b.turnTask) expect(held.has(t)).toBe(false);
      for (const t of held) expect(b.stats.taskTarget[t]).toBe(0);
      served += b.uuids.length;
      turns += b.segTurns.filter((n) => n > 1).length;
    }
    expect(served).toBeGreaterThan(500);
    if (packing === 'multiturn') expect(turns).toBeGreaterThan(0);
  });

  it('a resume token keeps its held-out set; asking for another one is FAILED_PRECONDITION', () => {
    const session = core.open({ spec: { ...trainSpec(), heldout: { name: 'music-reasoning' } } });
    const token = take(session, 2).batches[1]!.resumeToken;
    const resumed = core.open({ resume: { token } });
    expect(resumed.heldout.fingerprint).toBe(session.heldout.fingerprint);
    expect(() => core.open({ resume: { token, heldout: { name: 'loco-music-caption' } } })).toThrow(
      expect.objectContaining({ code: 'FAILED_PRECONDITION' }),
    );
    expect(() => core.open({ resume: { token, heldout: { name: 'music-reasoning' } } })).not.toThrow();
  });

  it('a held-out selector that matches nothing, or an unknown set name, is INVALID_ARGUMENT naming it', () => {
    expect(() => core.open({ spec: { ...trainSpec(), heldout: { selectors: ['music/Lyrics Reasoning'] } } })).toThrow(
      /Lyrics Reasoning/,
    );
    expect(() => core.open({ spec: { ...trainSpec(), heldout: { name: 'loco-everything' } } })).toThrow(
      /heldout\.name.*loco-everything/,
    );
  });
});
