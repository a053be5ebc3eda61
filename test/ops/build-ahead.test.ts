import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { summarize, unsummarize } from '../../src/server/batch-summary.js';
import { SendBudget, type StreamBytes } from '../../src/server/send-budget.js';
import { LocalOpener, type Built, type ServedStream, type ServedStreamOpener } from '../../src/server/served-stream.js';
import { BUILD_AHEAD, WorkerPool } from '../../src/server/worker-pool.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawOpen } from '../../src/stream/stream-request.js';

/**
 * Build-ahead in `serve --workers N` (build-worker.ts): a worker builds a stream's batches before
 * they are asked for, so whatever reaches the stream between batches (a mixture update, a loss
 * report, a shutdown, a cancel) must leave the stream exactly as the server thread builds it when
 * that message arrives after the batches taken so far. Driven in process, as the pump drives a
 * stream, with the worker's queue full before each message, against LocalOpener on the same index.
 */
describe('build workers build ahead', () => {
  let core: DataServiceCore;
  let pool: WorkerPool;
  let local: LocalOpener;
  beforeAll(async () => {
    const index = inject('sampleIndex');
    const settings = coreSettings(loadConfig(undefined, { 'index.dir': index }, {}));
    core = await DataServiceCore.open(index, settings);
    pool = await WorkerPool.start(core, index, settings, 1);
    local = new LocalOpener(core);
  });
  afterAll(() => pool.close());

  const calls = new WeakMap<ServedStream, { close: () => void; bytes: StreamBytes }>();
  /** Opens `raw` as its call does (stream-call.ts): with a signal that `close` aborts, and an account in `budget`. */
  async function open(
    o: ServedStreamOpener,
    raw: RawOpen,
    budget = new SendBudget(Number.MAX_SAFE_INTEGER),
  ): Promise<ServedStream> {
    const ctl = new AbortController();
    const bytes = budget.account();
    ctl.signal.addEventListener('abort', () => bytes.close(), { once: true });
    const s = await o.open(raw, { signal: ctl.signal, bytes });
    calls.set(s, { close: () => ctl.abort(), bytes });
    return s;
  }
  const close = (s: ServedStream): void => calls.get(s)!.close();

  const spec = (extra: object = {}): RawOpen => ({
    spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: 'packed', seed: 17, ...extra },
  });
  /** A batch as its digest (a failure prints short lines), an end as its reason. */
  const hex = (b: Built): string =>
    b && 'bytes' in b
      ? createHash('sha256').update(b.bytes).digest('hex').slice(0, 16)
      : b
        ? `end ${b.end.reason}`
        : 'none';

  /**
   * Waits until the worker holds at least `n` messages ahead (a loaded machine may take a while),
   * then lets it build as far as it may (until what it holds stops growing).
   */
  async function filled(s: ServedStream, n = BUILD_AHEAD.messages / 2): Promise<void> {
    for (let i = 0; i < 4000 && pool.held(s).ahead < n; i++) await new Promise((r) => setTimeout(r, 5));
    for (let last = -1, same = 0; same < 4;) {
      await new Promise((r) => setTimeout(r, 5));
      const held = pool.held(s).ahead;
      same = held === last ? same + 1 : 0;
      last = held;
    }
    expect(pool.held(s).ahead).toBeGreaterThanOrEqual(n);
    // The credit bounds what a stream holds, however long nobody takes from it.
    expect(pool.held(s).ahead).toBeLessThanOrEqual(BUILD_AHEAD.messages);
  }

  async function take(s: ServedStream, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(hex(await s.build()));
    return out;
  }

  it('a mixture update after batches built ahead: the worker rewinds, and the stream is the server thread’s byte for byte', async () => {
    const update = { name: 'balanced-domains', applyAtStep: 4 };
    const ref = await open(local, spec());
    const want = [...(await take(ref, 3))];
    await ref.addUpdate(update);
    want.push(...(await take(ref, 5)));
    const s = await open(pool, spec());
    const got = await take(s, 3);
    await filled(s);
    await s.addUpdate(update);
    got.push(...(await take(s, 5)));
    expect(got).toEqual(want);
    // The update changed batches the worker had built: they were not sent.
    const plain = await open(local, spec());
    expect((await take(plain, 8)).slice(3)).not.toEqual(want.slice(3));
    close(s);
  });

  it('a refused update (a step already sent) fails as on the server thread and the stream goes on unchanged', async () => {
    const ref = await open(local, spec({ seed: 3 }));
    const want = await take(ref, 6);
    const s = await open(pool, spec({ seed: 3 }));
    const got = await take(s, 3);
    await filled(s);
    const refused = await s.addUpdate({ name: 'balanced-domains', applyAtStep: 2 }).catch((e: Error) => e);
    const localRef = await open(local, spec({ seed: 3 }));
    await take(localRef, 3);
    const localRefused = await localRef.addUpdate({ name: 'balanced-domains', applyAtStep: 2 }).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toBe((localRefused as Error).message);
    got.push(...(await take(s, 3)));
    expect(got).toEqual(want);
    close(s);
  });

  it('a finite stream whose end was built ahead, rewound by an update, ends where the server thread ends it', async () => {
    const update = { name: 'balanced-domains', applyAtStep: 3 };
    const ref = await open(local, spec({ seed: 5, maxBatches: 4 }));
    const want = await take(ref, 2);
    await ref.addUpdate(update);
    want.push(...(await take(ref, 3)));
    const s = await open(pool, spec({ seed: 5, maxBatches: 4 }));
    const got = await take(s, 2);
    await filled(s, 2); // batches 3 and 4, and the end once credit allows
    await s.addUpdate(update);
    got.push(...(await take(s, 3)));
    expect(got).toEqual(want);
    expect(got[4]).toBe('end max_batches');
    close(s);
  });

  it('a policy stream fed reports while the worker builds ahead, then updated, is the server thread’s stream', async () => {
    const policy = spec({
      seed: 9,
      mixture: {
        weights: { speech: 0.4, music: 0.3, audio: 0.3 },
        policy: 'excess-loss',
        lagSteps: 3,
        reference: { speech: 1, music: 1, audio: 1 },
      },
    });
    let most = 0;
    // With lag_steps 3, after the report of the step taken last the worker may build 3 steps ahead.
    const settle = async (s: ServedStream): Promise<void> => {
      await filled(s, 2);
      most = Math.max(most, pool.held(s).ahead);
    };
    const run = async (s: ServedStream, ahead: boolean): Promise<string[]> => {
      const out: string[] = [];
      for (let step = 0; step < 9; step++) {
        if (ahead) await settle(s);
        const b = await s.build();
        if (!b || 'end' in b) throw new Error('no batch');
        out.push(hex(b));
        const task = b.batch.turnTask[0] ?? 0;
        await s.addReport({ step, losses: [{ task, tokens: 10 + step, lossSum: 20 + 3 * step }] });
        if (step === 4) await s.addUpdate({ name: 'balanced-domains', applyAtStep: 7 });
      }
      return out;
    };
    const want = await run(await open(local, policy), false);
    const s = await open(pool, policy);
    expect(await run(s, true)).toEqual(want);
    expect(most).toBeGreaterThanOrEqual(2); // the worker did build ahead of the reports' step
    close(s);
  });

  it('shutdown hands back the token of the last batch taken, not of one built ahead; it resumes exactly', async () => {
    const ref = await open(local, spec({ seed: 23 }));
    const want = await take(ref, 6);
    const s = await open(pool, spec({ seed: 23 }));
    const got = await take(s, 2);
    await filled(s);
    const { end } = await s.end('shutdown');
    expect(end.reason).toBe('shutdown');
    close(s);
    const resumed = await open(local, { resume: { token: end.resumeToken } });
    got.push(...(await take(resumed, 4)));
    expect(got).toEqual(want);
  });

  it('a cancelled stream with batches built ahead frees its slot, its route and its session on the worker', async () => {
    const before = pool.held().workers[0]!;
    const s = await open(pool, spec({ seed: 29 }));
    await take(s, 1);
    await filled(s);
    expect(pool.held().workers[0]).toMatchObject({ load: before.load + 1, routes: before.routes + 1 });
    close(s);
    expect(pool.held(s).ahead).toBe(0);
    expect(await s.build()).toBeUndefined();
    const after = pool.held().workers[0]!;
    expect({ load: after.load, routes: after.routes }).toEqual({ load: before.load, routes: before.routes });
    // The worker forgot it: a stream opened next finds only itself there (plus those open before).
    const next = await open(pool, spec({ seed: 31 }));
    await take(next, 1);
    expect(pool.held().workers[0]!.open).toBe(before.routes + 1);
    close(next);
  });

  const sizeOf = (b: Built): number => (b && 'bytes' in b ? b.bytes.length : 0);
  /** Until what the pool holds stops changing (a loaded machine may take a while to build). */
  async function settled(): Promise<void> {
    for (let last = '', same = 0; same < 10;) {
      await new Promise((r) => setTimeout(r, 20));
      const now = JSON.stringify(pool.held());
      same = now === last ? same + 1 : 0;
      last = now;
    }
  }

  it('what a worker builds ahead is charged to the send budget as it arrives: the budget counts every built byte', async () => {
    const budget = new SendBudget(Number.MAX_SAFE_INTEGER);
    const s = await open(pool, spec({ seed: 41 }), budget);
    const taken = [await s.build()]; // written out to a client that does not read: still held
    await filled(s);
    const held = budget.bytes;
    const ahead = pool.held(s).ahead;
    for (let i = 0; i < ahead; i++) taken.push(await s.build());
    expect(taken.every((b) => sizeOf(b) > 0)).toBe(true);
    expect(held).toBe(taken.reduce((n, b) => n + sizeOf(b), 0));
    close(s);
    expect(budget.bytes).toBe(0);
  });

  it('with the send budget full, idle streams build nothing ahead beyond the batch each holds; a stream that reads is served', async () => {
    const budget = new SendBudget(1);
    const idle = await Promise.all([51, 52, 53, 54, 55, 56].map((seed) => open(pool, spec({ seed }), budget)));
    const taken = await Promise.all(idle.map((s) => s.build())); // one each, never read by its client
    await settled();
    for (const s of idle) expect(pool.held(s).ahead).toBe(0);
    expect(budget.bytes).toBe(taken.reduce((n, b) => n + sizeOf(b), 0));
    // A stream whose batches are written out (given back) builds on, however full the budget.
    const reader = await open(pool, spec({ seed: 57 }), budget);
    const want = await take(await open(local, spec({ seed: 57 })), 5);
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await reader.build();
      got.push(hex(b));
      if (b && 'bytes' in b) calls.get(reader)!.bytes.give(b.bytes.length); // as the pump does once written out
    }
    expect(got).toEqual(want);
    for (const s of [...idle, reader]) close(s);
    expect(budget.bytes).toBe(0);
  });

  it('a batch built ahead carries the time the worker spent building it (flanstream_batch_build_seconds, not the wait for it)', async () => {
    const s = await open(pool, spec({ seed: 37 }));
    await take(s, 1);
    await filled(s);
    const b = await s.build();
    if (!b || 'end' in b) throw new Error('no batch');
    expect(b.seconds).toBeGreaterThan(0);
    const ref = await (await open(local, spec({ seed: 37 }))).build();
    expect(ref && 'bytes' in ref ? ref.seconds : 'no batch').toBeUndefined(); // the pump times the server thread's own build
    close(s);
  });

  it('the columns /metrics reads cross the thread unchanged (summary of real batches of every kind)', async () => {
    const specs: RawOpen[] = [
      spec(),
      spec({ packing: 'none' }),
      spec({ audio: { codebooks: 1, layout: 'delay' } }),
      { spec: { split: 'test', batchSize: 4, seqLen: 2048, packing: 'examples' } },
    ];
    for (const raw of specs) {
      const b = await (await open(local, raw)).build();
      if (!b || 'end' in b) throw new Error('no batch');
      const got = unsummarize(summarize(b.batch));
      for (const k of [
        'step',
        'batchSize',
        'seqLen',
        'segTask',
        'segLength',
        'segTextTokens',
        'segAudioTokens',
        'segAudioFrames',
        'segDomain',
        'turnTask',
        'stats',
        'examples',
      ] as const) {
        expect(got[k], `${raw.spec?.packing} ${k}`).toEqual(b.batch[k]);
      }
    }
  });
});
