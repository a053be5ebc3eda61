import { status as Status } from '@grpc/grpc-js';
import {
  AUDIO_LAYOUTS,
  buildHeldout,
  buildSpec,
  checkOffered,
  OVERLONG,
  PACKINGS,
  SCOPES,
  SHUFFLES,
  SPLITS,
  WITHIN,
} from '../../clients/ts/spec.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient, FlanStreamDataset, type DatasetOptions } from '../../clients/ts/flanstream-client.js';
import { FlanStreamError } from '../../clients/ts/errors.js';
import { denseArrays } from '../../clients/ts/wire-decode.js';
import type { Batch, WireBatch } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { activeStreams, batchesOf } from '../helpers/grpc-stream-calls.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The TypeScript client: iteration, state dicts, live mixture updates, errors (docs/service.md). */
describe('TypeScript client', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  const opts: DatasetOptions = { split: 'train', batchSize: 3, seqLen: 2048, packing: 'packed', seed: 13 };
  const rawSpec = { split: 'train', batchSize: 3, seqLen: 2048, packing: 'packed', seed: 13 };
  let ref: WireBatch[];
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
    ref = await batchesOf(client, rawSpec, 16);
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
  });

  /** Takes `n` batches from a dataset's next loop. */
  async function take(ds: FlanStreamDataset, n: number): Promise<Batch[]> {
    const out: Batch[] = [];
    if (n === 0) return out;
    for await (const b of ds) if (out.push(b) >= n) break;
    return out;
  }
  const sameAsRef = (got: Batch[], from: number): void => {
    expect(got.map((b) => b.step)).toEqual(got.map((_, i) => from + i));
    expect(got.map((b) => hex(b.resumeToken))).toEqual(
      ref.slice(from, from + got.length).map((b) => hex(b.resumeToken)),
    );
    got.forEach((b, i) => expect(b.inputIds).toEqual(denseArrays(ref[from + i]!).inputIds));
  };

  it('agrees with the choices the server publishes, and checks a spec against them before streaming', async () => {
    const info = await client.corpusInfo();
    const c = info.choices!;
    expect({
      splits: c.splits,
      packings: c.packings,
      within: c.within,
      audioLayouts: c.audioLayouts,
      shuffles: c.shuffles,
      overlong: c.overlong,
      heldoutScopes: c.heldoutScopes,
    }).toEqual({
      splits: [...SPLITS],
      packings: [...PACKINGS],
      within: [...WITHIN],
      audioLayouts: [...AUDIO_LAYOUTS],
      shuffles: [...SHUFFLES],
      overlong: [...OVERLONG],
      heldoutScopes: [...SCOPES],
    });
    expect(c.evalOnlyPackings).toEqual(['examples']);
    const args = { ...rawSpec, mixture: undefined, heldout: undefined, rank: 0, worldSize: 1 };
    expect(() => buildSpec({ ...args, packing: 'examples' })).toThrow(/evaluation/);
    const spec = buildSpec({ ...args, shuffle: 'blocks' });
    checkOffered(spec, c);
    // What a server without the blocks order would publish.
    expect(() => checkOffered(spec, { ...c, shuffles: ['global'] })).toThrow(
      'shuffle "blocks" is not offered by this server; it offers: global',
    );
    expect(() => checkOffered({ ...spec, shuffle: '' }, { ...c, shuffles: ['global'] })).not.toThrow();
  });

  it('corpusInfo lists the tasks, vocabulary, held-out sets and mixtures', async () => {
    const info = await client.corpusInfo();
    expect(info.tasks).toHaveLength(80);
    const v = info.vocab!;
    expect(v.totalSize).toBeGreaterThan(v.audioOffset);
    expect({ codec: v.codec, frameRate: v.frameRate, pad: v.audioPadId, total: v.totalSize }).toEqual({
      codec: 'xcodec',
      frameRate: 50,
      pad: v.audioOffset + v.codebooks * v.codebookSize,
      total: v.audioPadId + 1,
    });
    expect(info.heldoutSets.map((h) => h.name)).toContain(info.defaultHeldout);
    expect(info.mixtures).toContain('natural');
    expect(info.domains).toEqual(['speech', 'music', 'audio']);
  });

  it('yields the server stream decoded; consecutive loops continue one stream', async () => {
    const ds = new FlanStreamDataset(ts.target, opts);
    const first = await take(ds, 4);
    const second = await take(ds, 4);
    sameAsRef([...first, ...second], 0);
    const b = first[0]!;
    expect(b.segments[0]!.task).toMatch(/^(speech|music|audio)\//);
    expect(Object.keys(b.stats.domains)).toEqual(['speech', 'music', 'audio']);
    expect(b.stats.examples).toBe(b.segments.length);
    ds.close();
  });

  it('stateDict holds the last batch handed out, not the prefetched ones', async () => {
    const ds = new FlanStreamDataset(ts.target, { ...opts, prefetch: 8 });
    const it = ds[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await it.next();
    await sleep(300); // let the prefetch queue fill far ahead
    const state = ds.stateDict();
    expect(state.step).toBe(2);
    expect(hex(state.resumeToken!)).toBe(hex(ref[2]!.resumeToken));
    await it.return?.();
    const fresh = new FlanStreamDataset(ts.target, { ...opts, seed: 999 });
    fresh.loadStateDict(state);
    sameAsRef(await take(fresh, 5), 3);
    ds.close();
    fresh.close();
  });

  it('a state saved before the first batch reproduces the fresh start; at world size 2 it resumes elastically', async () => {
    const ds = new FlanStreamDataset(ts.target, opts);
    const before = ds.stateDict();
    expect(before.resumeToken).toBeNull();
    const other = new FlanStreamDataset(ts.target, { ...opts, seed: 1, batchSize: 5 });
    other.loadStateDict(before);
    sameAsRef(await take(other, 2), 0);
    await take(ds, 4);
    const half = [0, 1].map((rank) => new FlanStreamDataset(ts.target, { ...opts, rank, worldSize: 2 }));
    for (const h of half) h.loadStateDict(ds.stateDict());
    const [a, b] = await Promise.all(half.map((h) => take(h, 2)));
    // After 4 steps of 3 rows: W=2 steps of 2×3 rows continue at row 12 (= W=1 step 4).
    expect(a!.map((x) => x.step)).toEqual([4, 5]);
    expect([a![0]!.inputIds, b![0]!.inputIds, a![1]!.inputIds, b![1]!.inputIds]).toEqual(
      ref.slice(4, 8).map((r) => denseArrays(r).inputIds),
    );
    for (const d of [ds, other, ...half]) d.close();
  });

  it('updateMixture applies at exactly atStep, even with batches prefetched past it', async () => {
    const updates = [{ weights: { music: 1 }, applyAtStep: 6 }];
    const want = await batchesOf(client, rawSpec, 10, updates);
    const ds = new FlanStreamDataset(ts.target, { ...opts, prefetch: 16 });
    const got: Batch[] = [];
    for await (const b of ds) {
      got.push(b);
      if (b.step === 3) {
        await sleep(300); // the prefetch queue now holds steps ≥ 6 built under the old weights
        ds.updateMixture({ music: 1 }, 6, { merge: false });
        expect(ds.stateDict().pendingUpdates).toEqual([{ weights: { music: 1 }, atStep: 6 }]);
        expect(() => ds.updateMixture({ music: 1 }, 3, { merge: false })).toThrow(TypeError);
      }
      if (got.length === 10) break;
    }
    got.forEach((b, i) => expect(b.inputIds, `step ${i}`).toEqual(denseArrays(want[i]!).inputIds));
    // Tokens carry pending updates: from the restart on (step 4) they are the reference's.
    expect(got.slice(4).map((b) => hex(b.resumeToken))).toEqual(want.slice(4).map((b) => hex(b.resumeToken)));
    expect(got[6]!.stats.domains.music!.target).toBeCloseTo(1, 9);
    expect(got[5]!.stats.domains.music!.target).toBeLessThan(1);
    // The shares since the update count from its step: all music from step 6 on (the packing
    // window's earlier draws of other domains are dropped by an update that silences them).
    expect([got[5]!.stats.sinceUpdateStep, got[6]!.stats.sinceUpdateStep]).toEqual([0, 6]);
    expect(got[9]!.stats.domains.music!.realizedSinceUpdate).toBeCloseTo(1, 9);
    expect(got[9]!.stats.domains.music!.realized).toBeLessThan(1);
    expect(ds.pendingUpdates).toEqual([]);
    ds.close();
  });

  it('a partial update is refused listing what it would zero, or merged into the current weights', async () => {
    const mixture = { weights: { speech: 0.5, music: 0.25, audio: 0.25 } };
    const ds = new FlanStreamDataset(ts.target, { ...opts, mixture });
    await take(ds, 2);
    expect(() => ds.updateMixture({ speech: 0.8 }, 4)).toThrow(/weight 0 to "audio", "music".*merge: true/);
    expect(ds.pendingUpdates).toEqual([]);
    ds.updateMixture({ speech: 0.8 }, 4, { merge: true });
    expect(ds.pendingUpdates).toEqual([{ weights: { speech: 0.8, music: 0.25, audio: 0.25 }, atStep: 4 }]);
    const got = await take(ds, 3);
    expect(got.map((b) => b.step)).toEqual([2, 3, 4]);
    expect(got[2]!.stats.domains.speech!.target).toBeCloseTo(0.8 / 1.3, 9);
    expect(got[1]!.stats.domains.speech!.target).toBeCloseTo(0.5, 9);
    // a natural mixture: after a batch its per-task targets are the reference; before, nothing is known
    const natural = new FlanStreamDataset(ts.target, opts);
    expect(() => natural.updateMixture({ speech: 1 }, 3)).toThrow(/corpusInfo/);
    const info = await natural.corpusInfo();
    expect(() => natural.updateMixture({ speech: 1 }, 3)).toThrow(/cannot tell/);
    await take(natural, 1);
    expect(() => natural.updateMixture({ speech: 1, music: 1 }, 3)).toThrow(/weight 0 to "audio" /);
    natural.updateMixture({ speech: 1, music: 1, audio: 0 }, 3);
    // merging must not split a weighted selector: "speech" cannot keep a weight for only part of its tasks
    const speechMajor = info.tasks.find((t) => t.domain === 'speech')!.major;
    expect(() => ds.updateMixture({ [`speech/${speechMajor}`]: 1 }, 6, { merge: true })).toThrow(/cannot merge/);
    ds.close();
    natural.close();
  });

  it('axis selectors pass through the spec and updates; an axis update naming every task needs no merge', async () => {
    const ds = new FlanStreamDataset(ts.target, {
      ...opts,
      mixture: { weights: { 'ug:generation': 0.3, 'ug:understanding': 0.7 } },
    });
    const info = await ds.corpusInfo();
    const gen = new Set(info.tasks.filter((t) => t.ug === 'generation').map((t) => t.path));
    const share = (b: Batch): number =>
      Object.entries(b.stats.tasks).reduce((s, [p, v]) => s + (gen.has(p) ? v.target : 0), 0);
    const first = await take(ds, 2);
    expect(share(first[1]!)).toBeCloseTo(0.3, 9);
    expect(() => ds.updateMixture({ 'ug:generation': 1 }, 4)).toThrow(/weight 0 to "ug:understanding"/);
    ds.updateMixture({ 'ug:generation': 0.6, 'ug:understanding': 0.4 }, 4);
    const got = await take(ds, 3);
    expect(got.map((b) => b.step)).toEqual([2, 3, 4]);
    expect(share(got[2]!)).toBeCloseTo(0.6, 9);
    ds.close();
  });

  it('pending updates travel in the state dict and are resent on resume', async () => {
    const want = await batchesOf(client, rawSpec, 8, [{ weights: { audio: 1 }, applyAtStep: 5 }]);
    const ds = new FlanStreamDataset(ts.target, opts);
    await take(ds, 2);
    ds.updateMixture({ audio: 1 }, 5, { merge: false });
    await take(ds, 1);
    const resumed = new FlanStreamDataset(ts.target, opts);
    resumed.loadStateDict(ds.stateDict());
    const rest = await take(resumed, 5);
    expect(rest.map((b) => hex(b.resumeToken))).toEqual(want.slice(3).map((b) => hex(b.resumeToken)));
    ds.close();
    resumed.close();
  });

  it('maxBatches bounds each loop; summary tells why the stream ended', async () => {
    const ds = new FlanStreamDataset(ts.target, { ...opts, maxBatches: 3 });
    const a = [];
    for await (const b of ds) a.push(b);
    expect(ds.summary?.reason).toBe('max_batches');
    const b = [];
    for await (const x of ds) b.push(x);
    sameAsRef([...a, ...b], 0);
    ds.close();
  });

  it('summary counts the evaluation items that fit no row, per task', async () => {
    const ds = new FlanStreamDataset(ts.target, {
      split: 'heldout',
      heldout: 'unseen-flag',
      packing: 'none',
      seqLen: 1024,
      batchSize: 16,
    });
    let served = 0;
    for await (const b of ds) served += b.segments.length;
    const s = ds.summary!;
    expect(s.reason).toBe('complete');
    expect(s.totalDropped).toBeGreaterThan(0);
    expect(Object.values(s.dropped).reduce((a, b) => a + b, 0)).toBe(s.totalDropped);
    // One rank: what was served plus what fit no row is the whole set.
    expect(served + s.totalDropped).toBe(s.totalExamples);
    ds.close();
  });

  it('starting a loop takes the stream over: the previous loop rejects, saying why; close() ends one quietly', async () => {
    const ds = new FlanStreamDataset(ts.target, opts);
    const first = ds[Symbol.asyncIterator]();
    expect((await first.next()).value.step).toBe(0);
    const second = ds[Symbol.asyncIterator]();
    await expect(first.next()).rejects.toThrow(/ended by a newer one \(after step 0\).*separate FlanStreamDataset/);
    expect((await second.next()).value.step).toBe(1);
    await second.return?.();
    await expect.poll(() => activeStreams(ts), { timeout: 5000 }).toBe(0);
    const third = ds[Symbol.asyncIterator]();
    expect((await third.next()).value.step).toBe(2);
    ds.close();
    expect((await third.next()).done).toBe(true);
  });

  it('audio picks codebooks and layout; the state dict resumes it, and a dataset asking for another layout is refused', async () => {
    const audio = { codebooks: 2, layout: 'delay' } as const;
    const raw = await batchesOf(client, { ...rawSpec, audio }, 4);
    expect(hex(raw[0]!.tokens)).not.toBe(hex(ref[0]!.tokens));
    const ds = new FlanStreamDataset(ts.target, { ...opts, audio });
    const got = await take(ds, 2);
    got.forEach((b, i) => expect(b.inputIds).toEqual(denseArrays(raw[i]!).inputIds));
    const again = new FlanStreamDataset(ts.target, { ...opts, audio });
    again.loadStateDict(ds.stateDict());
    (await take(again, 2)).forEach((b, i) => expect(b.inputIds).toEqual(denseArrays(raw[2 + i]!).inputIds));
    const flat = new FlanStreamDataset(ts.target, opts);
    flat.loadStateDict(ds.stateDict());
    const err = await take(flat, 1).catch((e: unknown) => e);
    expect((err as FlanStreamError).code).toBe(Status.FAILED_PRECONDITION);
    expect((err as FlanStreamError).message).toMatch(/made with audio \{codebooks: 2, layout: delay\}/);
    expect(() => new FlanStreamDataset(ts.target, { ...opts, audio: { layout: 'zigzag' as never } })).toThrow(
      TypeError,
    );
    for (const d of [ds, again, flat]) d.close();
  });

  it('shuffle "blocks" is sent and resumed from the state dict; a dataset asking for another order is refused', async () => {
    const order = { shuffle: 'blocks', shuffleWindow: 3 } as const;
    const raw = await batchesOf(client, { ...rawSpec, ...order }, 4);
    expect(hex(raw[0]!.tokens)).not.toBe(hex(ref[0]!.tokens));
    const ds = new FlanStreamDataset(ts.target, { ...opts, ...order });
    (await take(ds, 2)).forEach((b, i) => expect(b.inputIds).toEqual(denseArrays(raw[i]!).inputIds));
    const again = new FlanStreamDataset(ts.target, { ...opts, ...order });
    again.loadStateDict(ds.stateDict());
    (await take(again, 2)).forEach((b, i) => expect(b.inputIds).toEqual(denseArrays(raw[2 + i]!).inputIds));
    const global = new FlanStreamDataset(ts.target, { ...opts, shuffle: 'global' });
    global.loadStateDict(ds.stateDict());
    const err = await take(global, 1).catch((e: unknown) => e);
    expect((err as FlanStreamError).code).toBe(Status.FAILED_PRECONDITION);
    expect((err as FlanStreamError).message).toMatch(
      /made with shuffle blocks \(shuffle_window 3\) but the request asks for global/,
    );
    for (const d of [ds, again, global]) d.close();
  });

  it('server errors reject the loop with FlanStreamError, without retrying', async () => {
    const ds = new FlanStreamDataset(ts.target, { ...opts, heldout: 'no-such-set' });
    const err = await take(ds, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlanStreamError);
    expect((err as FlanStreamError).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as FlanStreamError).metadata['flanstream-field']).toBe('heldout.name');
    ds.close();
  });

  it('bad arguments throw TypeError before anything is sent', () => {
    const bad: DatasetOptions[] = [
      { batchSize: 0 },
      { seqLen: 1.5 },
      { split: 'validation' as never },
      { packing: 'examples' },
      { rank: 2, worldSize: 2 },
      { split: 'test', mixture: { weights: { speech: 1 } } },
      { mixture: { weights: { speech: -1 } } },
      { mixture: { speech: 1 } as never },
      { heldout: { tasks: 'speech' as never } },
      { prefetch: 0 },
      { maxBatches: -1 },
      { overlong: 'chop' as never },
      { heldout: { datasets: '43_AudioCaps' as never } },
      { heldout: { datasets: [''] } },
      { heldout: { excludeOverlappingText: -1 } },
      { heldout: { excludeOverlappingText: 65 } },
      { heldout: { excludeOverlappingText: 2.5 } },
      { shuffle: 'random' as never },
      { shuffleWindow: 0 },
      { shuffleWindow: 1 << 17 },
      { shuffle: 'global', shuffleWindow: 4 },
      { split: 'test', shuffle: 'blocks' },
      { split: 'heldout', shuffleWindow: 2 },
    ];
    for (const o of bad) expect(() => new FlanStreamDataset(ts.target, o), JSON.stringify(o)).toThrow(TypeError);
    // A 100 KB authorization header would be refused by HTTP/2 itself (RST_STREAM, no status).
    expect(() => new FlanStreamClient(ts.target, { token: 'x'.repeat(100_000) })).toThrow(/authorization header/);
    expect(() => new FlanStreamDataset([], {})).toThrow(TypeError);
    expect(
      buildHeldout({ tasks: ['speech/Speech Caption'], datasets: ['43_AudioCaps'], excludeOverlappingText: 13 }),
    ).toMatchObject({
      selectors: ['speech/Speech Caption'],
      datasets: ['43_AudioCaps'],
      excludeOverlappingText: 13,
      inline: true,
    });
    expect(() => new FlanStreamDataset(ts.target, { split: 'test' }).updateMixture({ speech: 1 }, 3)).toThrow(
      TypeError,
    );
  });

  it('a URL or a host without a port is refused at once, showing the expected form', () => {
    // gRPC reads these as other names (port 443, a DNS name "//host") and retried them for 12 s.
    const bad: [string, RegExp][] = [
      ['http://localhost:50051', /is a URL/],
      ['https://10.0.0.1:443', /is a URL/],
      ['localhost', /has no port/],
      ['10.0.0.1', /has no port/],
      ['localhost:', /not a server address/],
      ['localhost:port', /not a server address/],
      ['localhost:50051/', /not a server address/],
      ['::1:50051', /not a server address/],
      ['localhost:0', /outside 1..65535/],
    ];
    for (const [target, says] of bad)
      for (const make of [
        () => new FlanStreamDataset(target),
        () => new FlanStreamDataset(ts.target, { targets: [target] }),
        () => new FlanStreamClient(target),
      ]) {
        expect(make, target).toThrow(TypeError);
        expect(make, target).toThrow(says);
        expect(make, target).toThrow(/"host:port", e\.g\. "localhost:50051"/);
      }
    for (const good of ['localhost:50051', '[::1]:50051', 'dns:///localhost:50051', 'unix:/tmp/flanstream.sock'])
      new FlanStreamDataset(good).close();
  });
});
