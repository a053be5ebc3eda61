import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { FlanError } from '../../src/errors.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawUpdate } from '../../src/stream/stream-request.js';
import { decodeToken } from '../../src/stream/resume-token.js';
import type { TrainState } from '../../src/stream/train-planner.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { expectedTargets, worstDeviation } from '../helpers/expected-mixture.js';
import { content, openCore, servedPerTask, take, trainSpec, type Spec } from '../helpers/core-streams.js';

let core: DataServiceCore;
let trainSize: number[];
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  trainSize = core.catalog.reader.tasks.map((t) => (t.unseen ? 0 : t.counts[0]));
});

const OLD = { weights: { speech: 0.9, music: 0.05, audio: 0.05 } };
const NEW = { weights: { speech: 0.2, 'music/Global MIR': 0.4, audio: 0.4 }, within: 'uniform' as const };
const update = (applyAtStep: number, m: object = NEW): RawUpdate => ({ ...m, applyAtStep });

function state(b: WireBatch): TrainState {
  return decodeToken(b.resumeToken, core.catalog.reader.fingerprint).state as TrainState;
}
const sampler = (b: WireBatch): TrainState['sampler'] => state(b).sampler;

/** Units per task pending in the packing window after batch `b`. */
function pooled(b: WireBatch): number[] {
  const { pool } = state(b);
  const out = core.catalog.reader.tasks.map(() => 0);
  for (let at = 0; at < pool.length;) {
    const turns = pool[at++]!;
    for (let k = 0; k < turns; k++, at += 2) out[pool[at]!]!++;
  }
  return out;
}

function run(spec: Spec, n: number, updates: RawUpdate[] = []): WireBatch[] {
  return take(core.open({ spec, updates }), n).batches;
}

describe('live mixture updates', () => {
  it.each(['none', 'packed', 'multiturn'] as const)(
    '%s: steps before apply_at_step are untouched; the target switches exactly at it',
    (packing) => {
      const spec = trainSpec({ packing, mixture: OLD });
      const plain = run(spec, 30);
      const updated = run(spec, 30, [update(12)]);
      for (let s = 0; s < 12; s++) expect(content(updated[s]!)).toBe(content(plain[s]!));
      expect(content(updated[12]!)).not.toBe(content(plain[12]!));
      const want = expectedTargets(NEW, core.catalog.reader.tasks, trainSize);
      expect(updated[11]!.stats.taskTarget).toEqual(plain[11]!.stats.taskTarget);
      updated[12]!.stats.taskTarget.forEach((p, t) => expect(p).toBeCloseTo(want[t]!, 12));
    },
  );

  it('none: the examples served from apply_at_step on follow the new weights within 0.5 pp', () => {
    const at = 5;
    const batches = run(trainSpec({ packing: 'none', batchSize: 50, mixture: OLD }), at + 200, [update(at)]).slice(at);
    const tasks = core.catalog.reader.tasks;
    const dev = worstDeviation(
      servedPerTask(batches, tasks.length),
      expectedTargets(NEW, tasks, trainSize),
      (t) => tasks[t]!.domain,
    );
    expect(dev.task).toBeLessThan(0.005);
    expect(dev.group).toBeLessThan(0.005);
  });

  it('packed: units still in the window at apply_at_step count against the new weights (silenced tasks leave it), so served + pooled follow them exactly', () => {
    const at = 5;
    const batches = run(trainSpec({ packing: 'packed', batchSize: 32, mixture: OLD }), at + 60, [update(at)]);
    const tasks = core.catalog.reader.tasks;
    const since = servedPerTask(batches.slice(at), tasks.length);
    const before = pooled(batches[at - 1]!);
    const now = pooled(batches[batches.length - 1]!);
    const drawn = sampler(batches[batches.length - 1]!).drawn;
    const want = expectedTargets(NEW, tasks, trainSize);
    // Counted since the update: the units of still-weighted tasks pending then, plus every draw since.
    expect(drawn).toBe(since.reduce((a, b) => a + b, 0) + now.reduce((a, b) => a + b, 0));
    expect(before.reduce((a, b) => a + b, 0)).toBe(256);
    // Tasks the new weights leave out leave the window at once: nothing of theirs from apply_at_step on.
    since.forEach((n, t) => {
      if (want[t] === 0) expect(n + now[t]!, tasks[t]!.path).toBe(0);
      else expect(Math.abs(n + now[t]! - drawn * want[t]!), tasks[t]!.path).toBeLessThan(1.5);
    });
    const dev = worstDeviation(since, want, (t) => tasks[t]!.domain);
    expect(Math.max(dev.task, dev.group)).toBeLessThan(256 / since.reduce((a, b) => a + b, 0));
  });

  it('rejects an update for a step already built, accepts the next step, and the last update for a step wins', () => {
    const session = core.open({ spec: trainSpec({ mixture: OLD }) });
    take(session, 4);
    try {
      session.addUpdate(core.update(update(3)));
      expect.unreachable();
    } catch (err) {
      expect((err as FlanError).code).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toMatch(/apply_at_step.*3.*already built/);
    }
    session.addUpdate(core.update(update(4, { weights: { music: 1 } })));
    session.addUpdate(core.update(update(4)));
    const b = take(session, 1).batches[0]!;
    expect(b.step).toBe(4);
    const want = expectedTargets(NEW, core.catalog.reader.tasks, trainSize);
    b.stats.taskTarget.forEach((p, t) => expect(p).toBeCloseTo(want[t]!, 12));
    expect(() =>
      core.open({ spec: trainSpec(), updates: [update(0), update(0, { weights: { music: 1, nothing: 1 } })] }),
    ).toThrow(/nothing/);
  });

  it('is deterministic: updates sent live equal updates in the open request; several updates apply in order', () => {
    const spec = trainSpec({ packing: 'packed', mixture: OLD, seed: 3 });
    const updates = [update(6), update(9, { weights: { music: 1 } }), update(14, OLD)];
    const a = run(spec, 20, updates);
    const b = run(spec, 20, updates);
    const live = core.open({ spec });
    const c = take(live, 2).batches;
    for (const u of updates) live.addUpdate(core.update(u));
    c.push(...take(live, 18).batches);
    for (let s = 0; s < 20; s++) {
      expect(content(b[s]!)).toBe(content(a[s]!));
      expect(content(c[s]!)).toBe(content(a[s]!));
      expect(b[s]!.resumeToken.equals(a[s]!.resumeToken)).toBe(true);
    }
    const music = core.catalog.reader.tasks.filter((t) => t.domain === 'music').map((t) => t.id);
    for (const s of [9, 13])
      expect(a[s]!.turnTask.filter((t) => !music.includes(t)).length).toBeLessThan(a[s]!.turnTask.length);
    // Steps 9–13 draw only music; packed rows may still finish units drawn before step 9.
    const drawnMusic = a[13]!.stats.taskExamples.reduce(
      (n, x, t) => n + (music.includes(t) ? x - a[8]!.stats.taskExamples[t]! : 0),
      0,
    );
    expect(drawnMusic).toBeGreaterThan(0);
    a[14]!.stats.taskTarget.forEach((p, t) =>
      expect(p).toBeCloseTo(expectedTargets(OLD, core.catalog.reader.tasks, trainSize)[t]!, 12),
    );
  });

  it.each(['packed', 'multiturn'] as const)(
    '%s: resumes exactly from tokens saved before, at and after the apply step, with updates in flight',
    (packing) => {
      const spec = trainSpec({ packing, mixture: OLD, seed: 11 });
      const session = core.open({ spec });
      const full = take(session, 3).batches;
      session.addUpdate(core.update(update(8)));
      session.addUpdate(core.update(update(15, { weights: { audio: 1 } })));
      full.push(...take(session, 22).batches);
      const check = (k: number, updates: RawUpdate[] = []): void => {
        // The token of batch k resumes at step k + 1; updates sent after it was saved are sent again.
        const resumed = take(core.open({ resume: { token: full[k]!.resumeToken }, updates }), 25 - k - 1).batches;
        resumed.forEach((b, j) => {
          expect(content(b)).toBe(content(full[k + 1 + j]!));
          expect(b.stats).toEqual(full[k + 1 + j]!.stats);
        });
      };
      // Saved before the updates were sent: the client sends them again with the token.
      for (const k of [0, 2]) check(k, [update(8), update(15, { weights: { audio: 1 } })]);
      // Saved with updates pending (they travel in the token), at the apply step, and after.
      for (const k of [3, 5, 7, 8, 12, 15, 16]) check(k);
    },
  );

  it('gives every rank the same stream for the same updates (W = 2), the rank streams together being the W = 1 stream', () => {
    const updates = [update(4), update(10, { weights: { 'speech/Speech Recognition': 1, music: 1 } })];
    const base = { ...trainSpec({ packing: 'packed', mixture: OLD, batchSize: 4 }), worldSize: 2 };
    const r0 = run({ ...base, rank: 0 }, 16, updates);
    const r1 = run({ ...base, rank: 1 }, 16, updates);
    const one = run(trainSpec({ packing: 'packed', mixture: OLD, batchSize: 8 }), 16, updates);
    for (let s = 0; s < 16; s++) {
      expect(r1[s]!.stats).toEqual(r0[s]!.stats);
      expect(r0[s]!.stats).toEqual(one[s]!.stats);
      expect([...r0[s]!.uuids, ...r1[s]!.uuids]).toEqual(one[s]!.uuids);
      expect(content({ ...r0[s]!, tokens: Buffer.concat([r0[s]!.tokens, r1[s]!.tokens]) })).not.toBe(content(r1[s]!));
    }
    // Elastic: rank 1's token at W = 2 resumes at W = 1 (batch 4) at the same global row.
    const resumed = take(core.open({ resume: { token: r1[7]!.resumeToken, worldSize: 1, rank: 0 } }), 2).batches;
    expect(resumed.map((b) => b.step)).toEqual([8, 9]);
    expect(resumed.map((b) => b.uuids)).toEqual([r0[8]!.uuids, r1[8]!.uuids]);
  });
});
