import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encodeStreamResponse } from '../../src/server/response-encoder.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { EvalPlanner } from '../../src/stream/eval-planner.js';
import type { RawOpen } from '../../src/stream/stream-request.js';
import { openCore, trainSpec, type Spec } from '../helpers/core-streams.js';

/**
 * The serving path (nextAsync) reads a planned step's pages ahead and builds from them: with a
 * page cache far smaller than the index, every message is byte-identical to the synchronous
 * build over a large cache, and neither planning nor building reads synchronously once the
 * stream is open (counted at the storage's synchronous read): planning reads ahead and holds what
 * it read until the batch is built, and a page it misses is read while the step is planned again.
 */
const SPECS: Record<string, Spec> = {
  'train packed': trainSpec({ batchSize: 4, seqLen: 2048, seed: 7, maxBatches: 4 }),
  'train multiturn': trainSpec({ batchSize: 4, packing: 'multiturn', seed: 7, maxBatches: 4 }),
  'train none delay k=1': trainSpec({
    batchSize: 4,
    packing: 'none',
    audio: { layout: 'delay', codebooks: 1 },
    maxBatches: 3,
  }),
  'train packed rank 1 of 2': trainSpec({ batchSize: 4, seqLen: 2048, rank: 1, worldSize: 2, maxBatches: 3 }),
  'test examples': { split: 'test', batchSize: 5, seqLen: 2048, packing: 'examples', heldout: { name: 'unseen-flag' } },
  'test packed': { split: 'test', batchSize: 4, seqLen: 2048, packing: 'packed', heldout: { name: 'unseen-flag' } },
};

function syncMessages(core: DataServiceCore, raw: RawOpen): Buffer[] {
  const s = core.open(raw);
  const out: Buffer[] = [];
  for (let m = s.next(); m; m = 'end' in m ? undefined : s.next()) out.push(encodeStreamResponse(m));
  return out;
}

/** A cache of a few pages, and room for about one step's pages at a time. */
const SMALL = {
  'index.cache_bytes': String(256 << 10),
  'index.prefetch_bytes': String(2 << 20),
  'index.read_concurrency': '3',
};

describe('reading ahead on the serving path', () => {
  let big: DataServiceCore;
  let small: DataServiceCore;
  // The same, each step reading nothing ahead of the next (every step planned from what it read itself).
  let alone: DataServiceCore;
  beforeAll(async () => {
    big = await openCore(inject('sampleIndex'));
    small = await openCore(inject('sampleIndex'), { ...SMALL, 'index.read_ahead_steps': '2' });
    alone = await openCore(inject('sampleIndex'), { ...SMALL, 'index.read_ahead_steps': '0' });
  });
  afterAll(() => {
    big?.catalog.reader.close();
    small?.catalog.reader.close();
    alone?.catalog.reader.close();
  });

  it.each(Object.entries(SPECS))(
    '%s: byte-identical to the synchronous build, and serving reads nothing synchronously',
    async (_name, spec) => {
      const reader = small.catalog.reader;
      const residentFor = reader.residentFor.bind(reader);
      const storage = reader.storage;
      const readRange = storage.readRange.bind(storage);
      // The storage's synchronous read path (readSync on the shard files), counted.
      let syncReads = 0;
      storage.readRange = (...args) => (syncReads++, readRange(...args));
      // Synchronous reads counted when a step's pages are held (just before it is built), and
      // what planning's read-ahead still held then.
      let atHeld: number | undefined;
      let planHeld = 0;
      // Pages planning asked for and did not find (each read alone, and the step planned again).
      const prefetch = reader.prefetch.bind(reader);
      let missed = 0;
      reader.prefetch = (pages, kind) => ((missed += kind === 'miss' ? 1 : 0), prefetch(pages, kind));
      // Rows planned by evaluation planners: the stream's own and its replay of the whole set.
      const planRows = EvalPlanner.prototype.rows;
      let evalRows = 0;
      EvalPlanner.prototype.rows = function (this: EvalPlanner, n: number) {
        evalRows++;
        return planRows.call(this, n);
      };
      reader.residentFor = (records, ids) => {
        planHeld = Math.max(planHeld, reader.prefetchHeld);
        return residentFor(records, ids).then((h) => ((atHeld = reader.cacheStats.misses), h));
      };
      try {
        const want = syncMessages(big, { spec });
        const s = small.open({ spec });
        const opened = reader.cacheStats.misses;
        const openedReads = syncReads;
        const got: Buffer[] = [];
        let built = 0;
        for (;;) {
          atHeld = undefined;
          const m = await s.nextAsync(() => new Promise((go) => setImmediate(go)));
          if (!m) break;
          got.push(encodeStreamResponse(m));
          if ('end' in m) break;
          built++;
          expect(atHeld, 'the batch was built after its pages were held').toBeDefined();
          expect(reader.cacheStats.misses, `synchronous reads while building batch ${built}`).toBe(atHeld);
          // Only what the next steps read ahead is held between messages, within planning's share.
          expect(reader.prefetchHeld).toBeLessThanOrEqual((2 << 20) / 4);
        }
        // What is still being read ahead is let go as it arrives.
        for (let k = 0; k < 100 && reader.prefetchHeld > 0; k++) await new Promise((go) => setTimeout(go, 20));
        expect(reader.prefetchHeld, 'held once the stream ended').toBe(0);
        expect(built).toBeGreaterThan(1);
        expect(reader.cacheStats.misses, 'synchronous reads while planning and building').toBe(opened);
        expect(syncReads, 'storage reads that blocked the thread while streaming').toBe(openedReads);
        expect(got.map((b) => b.toString('base64'))).toEqual(want.map((b) => b.toString('base64')));
        expect(reader.cacheStats.prefetched).toBeGreaterThan(0);
        // Planning's pages were still held while the batch's pages were gathered.
        expect(planHeld).toBeGreaterThan(0);
        // What a train stream's planning reads ahead is held until its batch is built: it misses
        // a few pages a step, not every page the cache let go meanwhile (hundreds here).
        if (spec.split === 'train') expect(missed, 'pages planning missed').toBeLessThan(4 * (built + 1));
        // An evaluation stream's replay of its set (its step count) goes on after a missed page
        // from its last whole step: a few calls a step and a miss, not a replay from the start
        // each time (thousands here).
        else expect(evalRows, 'evaluation rows planned').toBeLessThan(4 * (built + missed + 1));
      } finally {
        reader.residentFor = residentFor;
        reader.prefetch = prefetch;
        storage.readRange = readRange;
        EvalPlanner.prototype.rows = planRows;
      }
    },
  );
  it.each([
    ['each step reading for itself', 0, 0],
    ['reading the next steps ahead', 2, 0],
    ['reading the next steps ahead, update while they are read', 2, 2],
  ] as const)('a live mixture update arriving between steps applies at its step (%s)', async (_name, steps, when) => {
    const core = steps === 0 ? alone : small;
    // The update arrives after the token of the last batch was made: planning the next step again
    // from that token alone would lose it (the async stream would then differ from the sync one).
    const spec = trainSpec({ batchSize: 4, seqLen: 2048, seed: 3, maxBatches: 8 });
    const at = 4;
    const sync = big.open({ spec });
    const want: Buffer[] = [];
    const got: Buffer[] = [];
    const s = core.open({ spec });
    let missed = 0;
    const reader = core.catalog.reader;
    const prefetch = reader.prefetch.bind(reader);
    reader.prefetch = (pages, kind) => ((missed += kind === 'miss' ? 1 : 0), prefetch(pages, kind));
    try {
      for (let k = 0; ; k++) {
        if (k === when) {
          sync.addUpdate(big.update({ name: 'balanced-domains', applyAtStep: at }));
          s.addUpdate(core.update({ name: 'balanced-domains', applyAtStep: at }));
        }
        const w = sync.next();
        const m = await s.nextAsync(() => new Promise((go) => setImmediate(go)));
        if (!w || !m) break;
        want.push(encodeStreamResponse(w));
        got.push(encodeStreamResponse(m));
        if ('end' in w || 'end' in m) break;
      }
    } finally {
      reader.prefetch = prefetch;
    }
    // Without reading ahead the stream misses pages: the update survives a step planned again.
    if (steps === 0) expect(missed, 'steps were planned again after a miss').toBeGreaterThan(0);
    expect(got.length).toBeGreaterThan(at);
    expect(got.map((b) => b.toString('base64'))).toEqual(want.map((b) => b.toString('base64')));
  });

  it.each([
    ['train', trainSpec({ batchSize: 4, seqLen: 2048, seed: 5, maxBatches: 12 })],
    ['evaluation', { ...SPECS['test examples']!, maxBatches: 12 }],
  ] as const)(
    'steps overlap (%s): the next steps are read while a batch is built and sent, so a step waits for few reads',
    async (_name, spec) => {
      const pause = (): Promise<void> => new Promise((go) => setImmediate(go));
      /** Per message: reads started while it was sent, and pages its batch waited for; reads in all. */
      const run = async (steps: number): Promise<{ across: number[]; waited: number[]; started: number }> => {
        const core = await openCore(inject('sampleIndex'), {
          'index.cache_bytes': String(32 << 20),
          'index.prefetch_bytes': String(8 << 20),
          'index.read_ahead_steps': String(steps),
        });
        const storage = core.catalog.reader.storage;
        const readRangeAsync = storage.readRangeAsync.bind(storage);
        let started = 0;
        // Reads started while no message was being made (while one was sent).
        let calling = false;
        let between = 0;
        // Every read is held a moment, as a remote store's would be.
        storage.readRangeAsync = async (...args) => {
          started++;
          if (!calling) between++;
          await new Promise((go) => setTimeout(go, 5));
          return readRangeAsync(...args);
        };
        // Per message: pages its batch still had to read once it was planned (what building it waited for).
        const reader = core.catalog.reader;
        const residentFor = reader.residentFor.bind(reader);
        const waited: number[] = [];
        reader.residentFor = (records, ids) => residentFor(records, ids).then((h) => (waited.push(h.read), h));
        const across: number[] = [];
        try {
          const s = core.open({ spec });
          for (;;) {
            calling = true;
            const m = await s.nextAsync(pause);
            calling = false;
            if (!m || 'end' in m) break;
            // The batch is sent and trained on meanwhile.
            between = 0;
            await new Promise((go) => setTimeout(go, 30));
            across.push(between);
          }
          s.close();
          // What is still being read ahead is let go as it arrives.
          for (let k = 0; k < 100 && core.catalog.reader.prefetchHeld > 0; k++)
            await new Promise((go) => setTimeout(go, 20));
          expect(core.catalog.reader.prefetchHeld, 'held once the stream closed').toBe(0);
        } finally {
          storage.readRangeAsync = readRangeAsync;
          reader.residentFor = residentFor;
          reader.close();
        }
        return { across, waited, started };
      };
      const alone = await run(0);
      const overlapped = await run(2);
      // Each step reading for itself: nothing is read between messages, and every batch waits for its pages.
      expect(alone.across.every((n) => n === 0)).toBe(true);
      expect(
        overlapped.across.reduce((a, b) => a + b, 0),
        'reads started while batches were sent',
      ).toBeGreaterThan(0);
      // Once the stream is under way, the pages a batch needs were read while the steps before it
      // were sent: few are still to read when it is planned.
      const late = (a: number[]): number => a.slice(a.length / 2).reduce((x, y) => x + y, 0);
      expect(late(alone.waited), 'pages of batches reading for themselves').toBeGreaterThan(10);
      expect(late(overlapped.waited), `pages waited for: ${overlapped.waited} vs ${alone.waited}`).toBeLessThan(
        late(alone.waited) / 2,
      );
      // Reading ahead reads what the steps draw, not much more.
      expect(overlapped.started).toBeLessThan(2 * alone.started);
    },
  );
});
