import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ResourceExhaustedError } from '../../src/errors.js';
import { Contamination } from '../../src/splits/contamination.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { ScanAborted } from '../../src/util/steps.js';
import { digests } from '../helpers/batch-digests.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { corpusInfo, dataClient, scrape, sleep, sumOf, type DataClient } from '../ops/helpers/grpc.js';

/**
 * What a stream scans when it opens (a held-out set's guard, train sizes, servable tasks, an
 * evaluation's items) runs between event-loop turns, shared by concurrent opens, after the
 * stream was admitted, and stops when its call goes away.
 */
describe('open-time scans off the event loop', () => {
  let core: DataServiceCore;
  let task: string;
  /** An inline held-out set with text decontamination: each spec `k` its own set (its own scan). */
  const spec = (k: number, over: object = {}) =>
    trainSpec({
      batchSize: 2,
      seqLen: 2048,
      seed: 7,
      heldout: { inline: true, selectors: [task], excludeOverlappingText: 3 + k, excludeSharedAudio: true },
      ...over,
    });
  beforeAll(async () => {
    core = await openCore(inject('sampleIndex'));
    task = core.catalog.reader.tasks.find((t) => !t.unseen && t.domain === 'speech')!.path;
  }, 60_000);
  afterAll(() => core?.catalog.close());

  it('an inline held-out open scans in many turns and serves the stream an open at once serves', async () => {
    let turns = 0;
    const session = await core.openAsync({ spec: spec(0) }, { onTurn: () => turns++ });
    // 3,000 records in chunks of 256, a turn every few ms at least: never one piece.
    expect(turns).toBeGreaterThan(1);
    const fresh = await openCore(inject('sampleIndex'));
    try {
      expect(digests(take(session, 3).batches)).toEqual(digests(take(fresh.open({ spec: spec(0) }), 3).batches));
    } finally {
      fresh.catalog.close();
    }
  }, 60_000);

  it('two concurrent identical opens scan once', async () => {
    const make = vi.spyOn(Contamination, 'make');
    try {
      const before = core.catalog.cache.scans;
      const [a, b] = await Promise.all([core.openAsync({ spec: spec(1) }), core.openAsync({ spec: spec(1) })]);
      expect(make).toHaveBeenCalledTimes(1);
      const shared = core.catalog.cache.scans - before;
      // One more open of another set (its guard, its sizes, its servability) scans as many values.
      const one = core.catalog.cache.scans;
      await core.openAsync({ spec: spec(2) });
      expect(shared).toBe(core.catalog.cache.scans - one);
      expect(digests(take(a, 2).batches)).toEqual(digests(take(b, 2).batches));
    } finally {
      make.mockRestore();
    }
  }, 60_000);

  it('an open whose caller goes away stops its scan; the next open scans afresh', async () => {
    const stop = new AbortController();
    let turns = 0;
    const opening = core.openAsync(
      { spec: spec(3) },
      {
        signal: stop.signal,
        onTurn: () => {
          if (++turns === 2) stop.abort();
        },
      },
    );
    await expect(opening).rejects.toBeInstanceOf(ScanAborted);
    const stopped = turns;
    await sleep(50);
    // Nothing went on scanning for it, and nothing half made was kept.
    expect(turns).toBe(stopped);
    expect(core.catalog.cache.scanning).toBe(0);
    const again = await core.openAsync({ spec: spec(3) });
    expect(take(again, 1).batches).toHaveLength(1);
  }, 60_000);

  it('a stream is admitted before its open scans anything', async () => {
    const make = vi.spyOn(Contamination, 'make');
    try {
      const before = core.catalog.cache.scans;
      const refuse = (): void => {
        throw new ResourceExhaustedError('server.plan_budget_bytes', 2, 1);
      };
      await expect(core.openAsync({ spec: spec(4) }, { admit: refuse })).rejects.toBeInstanceOf(ResourceExhaustedError);
      expect(make).not.toHaveBeenCalled();
      expect(core.catalog.cache.scans).toBe(before);
      // An evaluation of a new set's held-out split (its items are a scan) is admitted first too.
      const heldout = { spec: { ...spec(5), split: 'heldout' } };
      await expect(core.openAsync(heldout, { admit: refuse })).rejects.toBeInstanceOf(ResourceExhaustedError);
      expect(core.catalog.cache.scans).toBe(before);
      let admitted = 0;
      const s = await core.openAsync(heldout, { admit: () => void admitted++ });
      expect(admitted).toBe(1);
      expect(take(s, 1).batches).toHaveLength(1);
    } finally {
      make.mockRestore();
    }
  }, 60_000);
});

describe('a server opening a stream that scans', () => {
  let ts: TestServer;
  let c: DataClient;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    c = dataClient(ts.target);
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });
  const heldout = (n: number) => {
    const task = ts.server.core.catalog.reader.tasks.find((t) => !t.unseen && t.domain === 'music')!.path;
    return { inline: true, selectors: [task], excludeOverlappingText: n };
  };
  /** Slows each train record's classification (a larger index, in effect): the scan takes many turns. */
  function slowClassify(): { calls: () => number; restore: () => void } {
    const real = Contamination.prototype.classify;
    let calls = 0;
    const spy = vi.spyOn(Contamination.prototype, 'classify').mockImplementation(function (this: Contamination, s, r) {
      calls++;
      const until = performance.now() + 0.05;
      while (performance.now() < until);
      return real.call(this, s, r);
    });
    return { calls: () => calls, restore: () => spy.mockRestore() };
  }

  it('answers other calls while a stream opens, and frees the slot of a call cancelled during its open', async () => {
    const slow = slowClassify();
    try {
      const call = c.streamBatches(new grpc.Metadata());
      const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
        call.on('error', (e: grpc.ServiceError) => resolve(e));
        call.on('end', () => resolve(undefined));
      });
      const first = new Promise<void>((resolve) => call.once('data', () => resolve()));
      call.write({ spec: { split: 'train', batchSize: 2, seqLen: 2048, heldout: heldout(4) } });
      // Corpus info answered while the open classifies train records: between its first and its last.
      const during: number[] = [];
      for (let k = 0; k < 200 && during.length < 3; k++) {
        const at = slow.calls();
        await corpusInfo(c);
        if (at > 0 && slow.calls() > at) during.push(at);
      }
      expect(during.length).toBeGreaterThan(0);
      await first;
      call.cancel();
      await ended;

      // Cancelled while it opens: the scan stops and the slot and planning memory come back.
      const before = slow.calls();
      const cancelled = c.streamBatches(new grpc.Metadata());
      cancelled.on('error', () => undefined);
      cancelled.write({ spec: { split: 'train', batchSize: 2, seqLen: 2048, heldout: heldout(5) } });
      for (let k = 0; k < 400 && slow.calls() === before; k++) await sleep(5);
      expect(slow.calls()).toBeGreaterThan(before);
      cancelled.cancel();
      let m = await scrape(ts.server.httpPort);
      for (let k = 0; k < 200 && sumOf(m, 'flanstream_active_streams') > 0; k++) {
        await sleep(10);
        m = await scrape(ts.server.httpPort);
      }
      expect(sumOf(m, 'flanstream_active_streams')).toBe(0);
      expect(sumOf(m, 'flanstream_plan_bytes')).toBe(0);
      const stopped = slow.calls();
      await sleep(100);
      expect(slow.calls()).toBe(stopped);
      expect(ts.server.core.catalog.cache.scanning).toBe(0);
    } finally {
      slow.restore();
    }
  }, 120_000);
});
