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

describe('reading ahead on the serving path', () => {
  let big: DataServiceCore;
  let small: DataServiceCore;
  beforeAll(async () => {
    big = await openCore(inject('sampleIndex'));
    // A cache of a few pages, and room for about one step's pages at a time.
    small = await openCore(inject('sampleIndex'), {
      'index.cache_bytes': String(256 << 10),
      'index.prefetch_bytes': String(2 << 20),
      'index.read_concurrency': '3',
    });
  });
  afterAll(() => {
    big?.catalog.reader.close();
    small?.catalog.reader.close();
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
          expect(reader.prefetchHeld).toBe(0);
        }
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
  it('a live mixture update arriving between steps survives a step planned again after a miss', async () => {
    // The update arrives after the token of the last batch was made: planning the next step again
    // from that token alone would lose it (the async stream would then differ from the sync one).
    const spec = trainSpec({ batchSize: 4, seqLen: 2048, seed: 3, maxBatches: 8 });
    const at = 4;
    const sync = big.open({ spec });
    const want: Buffer[] = [];
    const got: Buffer[] = [];
    const s = small.open({ spec });
    let missed = 0;
    const reader = small.catalog.reader;
    const prefetch = reader.prefetch.bind(reader);
    reader.prefetch = (pages, kind) => ((missed += kind === 'miss' ? 1 : 0), prefetch(pages, kind));
    try {
      for (let k = 0; ; k++) {
        if (k === 0) {
          sync.addUpdate(big.update({ name: 'balanced-domains', applyAtStep: at }));
          s.addUpdate(small.update({ name: 'balanced-domains', applyAtStep: at }));
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
    expect(missed, 'steps were planned again after a miss').toBeGreaterThan(0);
    expect(got.length).toBeGreaterThan(at);
    expect(got.map((b) => b.toString('base64'))).toEqual(want.map((b) => b.toString('base64')));
  });
});
