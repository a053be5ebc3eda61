// Reading ahead for a very large step gives the event loop turns while it locates its records.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RecordRef } from '../../src/index/record-pages.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { planReads } from '../../src/stream/plan-reads.js';
import { openCore } from '../helpers/core-streams.js';

/**
 * A step of world_size × batch_size rows at the largest step size draws hundreds of thousands of
 * records; reading ahead for it locates each and lists its pages. That work, done in one piece,
 * held the event loop for 0.6 s on a 200k-record index; it now gives the loop a turn every few ms.
 */
describe('reading ahead for a very large step', () => {
  let core: DataServiceCore;
  beforeAll(async () => {
    core = await openCore(inject('sampleIndex'));
  });
  afterAll(() => core?.catalog.reader.close());

  it('locates 50,000 upcoming records between event-loop turns, and holds their pages', async () => {
    const table = core.catalog.table(0);
    const tasks = table.reader.tasks.length;
    const records: (() => RecordRef)[] = [];
    for (let k = 0; records.length < 50_000; k++) {
      const task = k % tasks;
      const size = table.size(task);
      if (size > 0) records.push(() => table.locate(task, k % size));
    }
    const reads = planReads(table);
    // Once to bring the pages into the page cache: the second pass reads nothing, so its only turns are its own.
    (await reads.ahead({ records, likely: records.length }, true)).release();
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const held = await reads.ahead({ records, likely: records.length }, true);
    ticking = false;
    // In one piece it ran through with no turn at all.
    expect(turns).toBeGreaterThanOrEqual(5);
    expect(table.reader.prefetchHeld).toBeGreaterThan(0);
    held.release();
    expect(table.reader.prefetchHeld).toBe(0);
  });
});
