import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { FlanError } from '../../src/errors.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture } from '../../src/stream/stream-request.js';
import type { RawLossReport } from '../../src/stream/loss-report.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { openCore, take, trainSpec, type Spec } from '../helpers/core-streams.js';
import { encodeToken, decodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import { specHash } from '../../src/stream/stream-spec.js';
import { digests, rowsOf } from '../helpers/batch-digests.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * Closed-loop policies (docs/closed-loop.md) driven through the core: a trainer's report for step s
 * feeds the step planned at s + lag_steps, so the stream is a function of the reports alone.
 */
let core: DataServiceCore;
let domainOf: string[];
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  domainOf = core.catalog.reader.tasks.map((t) => t.domain);
});

const LAG = 3;
const ODM: RawMixture = { weights: { speech: 0.5, music: 0.25, audio: 0.25 }, policy: 'odm', lagSteps: LAG, lr: 0.05 };
const EXCESS: RawMixture = {
  weights: { speech: 0.5, music: 0.25, audio: 0.25 },
  policy: 'excess-loss',
  lagSteps: LAG,
  reference: { speech: 1, music: 1, audio: 1 },
  smoothing: 0.01,
  minWeight: 0.05,
};
const spec = (mixture: RawMixture, over: Partial<Spec> = {}): Spec =>
  trainSpec({ batchSize: 4, seqLen: 2048, mixture, ...over });

/** A synthetic trainer: every served task loses 2 nats per token, the `hard` domain `extra` more. */
function lossesOf(b: WireBatch, hard = 'music', extra = 3): RawLossReport['losses'] {
  const per = new Map<number, number>();
  for (const t of b.turnTask) per.set(t, (per.get(t) ?? 0) + 10);
  return [...per].map(([task, tokens]) => ({
    task,
    tokens,
    lossSum: tokens * (2 + (domainOf[task] === hard ? extra : 0)),
  }));
}

const report = (s: StreamSession, raw: RawLossReport): void => s.addReport(core.lossReport(raw, s.heldout));

/** Runs `n` steps the way a trainer does: take a batch, train, report it (an empty report when `skip` says so). */
function run(session: StreamSession, n: number, skip: (step: number) => boolean = () => false): WireBatch[] {
  const out: WireBatch[] = [];
  while (out.length < n) {
    const b = take(session, 1).batches[0];
    if (!b) throw new Error(`stream stalled at step ${session.nextStep}`);
    out.push(b);
    report(session, { step: b.step, losses: skip(b.step) ? [] : lossesOf(b) });
  }
  return out;
}

const domainTarget = (b: WireBatch, d: string): number =>
  b.stats.domainTarget[['speech', 'music', 'audio'].indexOf(d)]!;

describe.each([
  ['odm', ODM],
  ['excess-loss', EXCESS],
] as const)('policy %s', (name, mixture) => {
  it('moves weight toward the hard domain; each decision applies exactly lag_steps after its report', () => {
    const batches = run(core.open({ spec: spec(mixture) }), 20);
    // Steps before the first decision serve the prior.
    for (let s = 0; s < LAG; s++) expect(domainTarget(batches[s]!, 'music'), `step ${s}`).toBeCloseTo(0.25, 12);
    expect(domainTarget(batches[LAG]!, 'music')).toBeGreaterThan(0.25);
    // music and audio start equal; only music is hard.
    expect(domainTarget(batches[19]!, 'music')).toBeGreaterThan(domainTarget(batches[19]!, 'audio') + 0.02);
    // excess-loss runs into the floor: the two easy domains keep min_weight each.
    if (name === 'excess-loss') expect(domainTarget(batches[19]!, 'music')).toBeCloseTo(1 - 2 * 0.05, 9);
  });

  it('same reports give a byte-identical stream (tokens included); different reports do not', () => {
    const a = run(core.open({ spec: spec(mixture) }), 15);
    const b = run(core.open({ spec: spec(mixture) }), 15);
    expect(digests(b)).toEqual(digests(a));
    const s = core.open({ spec: spec(mixture) });
    const c: WireBatch[] = [];
    for (let k = 0; k < 15; k++) {
      const x = take(s, 1).batches[0]!;
      c.push(x);
      report(s, { step: x.step, losses: lossesOf(x, 'audio') });
    }
    expect(digests(c).slice(0, LAG)).toEqual(digests(a).slice(0, LAG));
    expect(digests(c)[LAG + 1]).not.toBe(digests(a)[LAG + 1]);
  });

  it('resumes mid-policy exactly: the token carries the policy, the trainer re-sends the reports still due', () => {
    const full = run(core.open({ spec: spec(mixture, { packing: 'multiturn' }) }), 24);
    const cut = 10;
    const resumed = core.open({ resume: { token: full[cut - 1]!.resumeToken } });
    // Reports of steps cut − lag … cut − 1 were sent after the token was made: send them again.
    for (let s = cut - LAG; s < cut; s++) report(resumed, { step: s, losses: lossesOf(full[s]!) });
    const rest = run(resumed, 24 - cut);
    expect(digests(rest)).toEqual(digests(full.slice(cut)));
  });
});

describe('policy ado', () => {
  const ADO: RawMixture = { weights: { speech: 0.5, music: 0.25, audio: 0.25 }, policy: 'ado', lagSteps: LAG, lr: 0.5 };
  /** A trainer whose loss per token decays as a power law of the step; music has the most left to learn. */
  const BETA: Record<string, number> = { speech: 1, music: 4, audio: 0.5 };
  const decaying = (b: WireBatch): RawLossReport['losses'] => {
    const per = new Map<number, number>();
    for (const t of b.turnTask) per.set(t, (per.get(t) ?? 0) + 10);
    return [...per].map(([task, tokens]) => ({
      task,
      tokens,
      lossSum: tokens * (1 + BETA[domainOf[task]!]! * (b.step + 1) ** -0.5),
    }));
  };
  function trainAdo(session: StreamSession, n: number): WireBatch[] {
    const out: WireBatch[] = [];
    while (out.length < n) {
      const b = take(session, 1).batches[0]!;
      out.push(b);
      report(session, { step: b.step, losses: decaying(b) });
    }
    return out;
  }

  it('serves the prior until every arm has 3 windows, then follows the predicted learning speed', () => {
    const batches = trainAdo(core.open({ spec: spec(ADO) }), 30);
    // The reports of steps 0 and 1 give at most two windows per arm: no fit, the prior stays.
    const moved = batches.findIndex((b) => Math.abs(domainTarget(b, 'music') - 0.25) > 1e-9);
    expect(moved).toBeGreaterThanOrEqual(LAG + 2);
    expect(moved).toBeLessThan(20);
    const last = batches[29]!;
    expect(domainTarget(last, 'music')).toBeGreaterThan(0.25);
    expect(domainTarget(last, 'music')).toBeGreaterThan(domainTarget(last, 'audio') + 0.05);
  });

  it('replays exactly: same reports, byte-identical stream; a token resumes mid-fit exactly', () => {
    const full = trainAdo(core.open({ spec: spec(ADO) }), 24);
    expect(digests(trainAdo(core.open({ spec: spec(ADO) }), 24))).toEqual(digests(full));
    for (const cut of [4, 13]) {
      const resumed = core.open({ resume: { token: full[cut - 1]!.resumeToken } });
      for (let s = Math.max(0, cut - LAG); s < cut; s++) report(resumed, { step: s, losses: decaying(full[s]!) });
      expect(digests(trainAdo(resumed, 24 - cut))).toEqual(digests(full.slice(cut)));
    }
  });

  it('a forged ado state of the wrong width is refused naming it', () => {
    const b = trainAdo(core.open({ spec: spec(ADO) }), 6)[5]!;
    const p = decodeToken(b.resumeToken, core.catalog.reader.fingerprint) as TokenPayload<{
      policy: { score: number[] };
    }>;
    expect(p.state.policy.score).toHaveLength(3 * 19);
    const forged = { ...p, state: { ...p.state, policy: { ...p.state.policy, score: p.state.policy.score.slice(1) } } };
    expect(() => core.open({ resume: { token: encodeToken(forged) } })).toThrow(/policy\.score.*19 numbers per arm/);
  });
});

describe('reports and the lag window', () => {
  it('a policy stream plans step s + lag only once step s is settled; a skipped step is missing, not an error', () => {
    const s = core.open({ spec: spec(ODM) });
    const first = take(s, 10).batches;
    expect(first.map((b) => b.step)).toEqual([0, 1, 2]);
    expect(s.waiting).toBe(true);
    report(s, { step: 1, losses: lossesOf(first[1]!) }); // step 0 skipped: settled through 1
    expect(take(s, 10).batches.map((b) => b.step)).toEqual([3, 4]);
    report(s, { step: 4, losses: [] }); // an empty report: nothing to say about steps 2..4
    expect(take(s, 10).batches.map((b) => b.step)).toEqual([5, 6, 7]);
  });

  it('a missing report makes no decision: weights stay until a report with losses arrives', () => {
    const every = 2;
    const mixture = { ...ODM, everySteps: every };
    const quiet = run(core.open({ spec: spec(mixture) }), 12, (step) => step < 6);
    const base = domainTarget(quiet[0]!, 'music');
    for (let k = 0; k < 6 + LAG; k++) expect(domainTarget(quiet[k]!, 'music'), `step ${k}`).toBe(base);
    // The window of steps 6-7 decides; that decision applies at 7 + lag.
    expect(domainTarget(quiet[7 + LAG]!, 'music')).toBeGreaterThan(base);
  });

  it('a manual update takes precedence at its step; the policy acts again at its next decision', () => {
    const manual = { weights: { speech: 1, music: 1, audio: 1 }, applyAtStep: LAG + 2 };
    const batches = run(core.open({ spec: spec(ODM), updates: [manual] }), LAG + 5);
    expect(domainTarget(batches[LAG + 2]!, 'speech')).toBeCloseTo(1 / 3, 12);
    expect(domainTarget(batches[LAG + 3]!, 'speech')).not.toBeCloseTo(1 / 3, 6);
  });

  it('a static stream accepts reports, never waits for them and is unchanged by them', () => {
    const plain = take(core.open({ spec: spec({ weights: ODM.weights }) }), 12).batches;
    const reported = run(core.open({ spec: spec({ weights: ODM.weights }) }), 12);
    expect(digests(reported)).toEqual(digests(plain));
  });
});

describe('ranks', () => {
  it.each([
    [2, 'packed'],
    [3, 'multiturn'],
    [4, 'none'],
  ] as const)(
    'W=%i (%s): ranks sending the same all-reduced reports, in any order, get their slices of the W=1 stream',
    (W, packing) => {
      const B = 2;
      const n = 12;
      const ref = run(core.open({ spec: spec(ODM, { packing, batchSize: W * B }) }), n);
      const refRows = ref.flatMap(rowsOf);
      const reports = ref.map((b) => ({ step: b.step, losses: lossesOf(b) }));
      const sessions = Array.from({ length: W }, (_, rank) =>
        core.open({ spec: spec(ODM, { packing, batchSize: B, rank, worldSize: W }) }),
      );
      const got = sessions.map((): WireBatch[] => []);
      const before = { ...core.catalog.plans.counts };
      const rand = rng(W);
      while (got.some((g) => g.length < n)) {
        const r = Math.floor(rand() * W);
        if (got[r]!.length >= n) continue;
        const b = take(sessions[r]!, 1).batches[0]!;
        got[r]!.push(b);
        report(sessions[r]!, reports[b.step]!);
      }
      got.forEach((batches, r) =>
        batches.forEach((b, s) => {
          expect(rowsOf(b), `rank ${r} step ${s}`).toEqual(refRows.slice((s * W + r) * B, (s * W + r + 1) * B));
          expect(b.stats.taskTarget, `rank ${r} step ${s}`).toEqual(ref[s]!.stats.taskTarget);
          expect(Buffer.compare(b.resumeToken, got[0]![s]!.resumeToken)).toBe(0);
        }),
      );
      // Each step was planned once for all ranks.
      expect(core.catalog.plans.counts.misses - before.misses).toBe(n);
    },
  );

  it('a rank whose report differs plans its own steps (it never takes a plan made from another report)', () => {
    const W = 2;
    const sessions = [0, 1].map((rank) => core.open({ spec: spec(EXCESS, { batchSize: 2, rank, worldSize: W }) }));
    const a = run(sessions[0]!, 8);
    // While rank 0's stream is open the server refuses rank 1's different report
    // (report-agreement.test.ts); once it closed, rank 1 may report otherwise, and plans alone.
    sessions[0]!.close();
    const b: WireBatch[] = [];
    for (let k = 0; k < 8; k++) {
      const x = take(sessions[1]!, 1).batches[0]!;
      b.push(x);
      report(sessions[1]!, { step: x.step, losses: lossesOf(x, 'audio') });
    }
    expect(b[LAG + 1]!.stats.taskTarget).not.toEqual(a[LAG + 1]!.stats.taskTarget);
  });
});

describe('huge finite losses', () => {
  it.each([
    ['odm', ODM],
    ['excess-loss', EXCESS],
  ] as const)(
    '%s: a loss_sum of Number.MAX_VALUE (1.7977e308) keeps the arithmetic finite and every token resumable',
    (_, mixture) => {
      const s = core.open({ spec: spec(mixture) });
      const batches: WireBatch[] = [];
      for (let k = 0; k < 12; k++) {
        const b = take(s, 1).batches[0]!;
        batches.push(b);
        // Steps 1 and 2 report the largest finite double for every music task the stream serves (their sum overflows).
        const music = [...b.stats.taskTarget.keys()].filter(
          (t) => domainOf[t] === 'music' && b.stats.taskTarget[t]! > 0,
        );
        const rest = (lossesOf(b) ?? []).filter((l) => domainOf[l.task ?? -1] !== 'music');
        const losses =
          k >= 1 && k <= 2
            ? [...rest, ...music.map((task) => ({ task, tokens: 1, lossSum: Number.MAX_VALUE }))].sort(
                (x, y) => (x.task ?? 0) - (y.task ?? 0),
              )
            : lossesOf(b);
        report(s, { step: b.step, losses });
      }
      for (const b of batches) {
        expect(b.stats.taskTarget.every(Number.isFinite), `step ${b.step}`).toBe(true);
        // Not the uniform fallback: the domain with the huge loss gains weight.
        expect(domainTarget(b, 'music'), `step ${b.step}`).toBeGreaterThanOrEqual(0.25 - 1e-9);
        expect(core.open({ resume: { token: b.resumeToken } })).toBeDefined();
      }
      expect(domainTarget(batches[11]!, 'music')).toBeGreaterThan(0.5);
    },
  );
});

describe('policy state in resume tokens', () => {
  it('a forged policy state is refused with INVALID_ARGUMENT, never crashes the planner', () => {
    const b = run(core.open({ spec: spec(ODM) }), 6)[5]!;
    const p = decodeToken(b.resumeToken, core.catalog.reader.fingerprint) as TokenPayload<{
      policy: Record<string, unknown>;
    }>;
    const forge = (edit: (policy: Record<string, unknown>) => void): Uint8Array => {
      const q = structuredClone(p);
      edit(q.state.policy);
      return encodeToken(q);
    };
    const open = (token: Uint8Array): unknown => core.open({ resume: { token } });
    expect(open(forge(() => undefined))).toBeDefined();
    expect(() => open(forge((x) => ((x.score as number[])[0] = NaN)))).toThrow(
      /resume.token.state.policy.score\[0\]: must be a finite number, got NaN/,
    );
    expect(() => open(forge((x) => ((x.weights as number[]).length = 1)))).toThrow(
      /state.policy.weights: must list one number per arm \(3\)/,
    );
    expect(() => open(forge((x) => ((x.weights as number[])[0] = 5)))).toThrow(
      /state.policy.weights\[0\]: must be in \[0, 1\]/,
    );
    expect(() => open(forge((x) => ((x.weights as number[])[0] = 0)))).toThrow(/state.policy.weights: must sum to 1/);
    expect(() => open(forge((x) => ((x.winTokens as number[])[1] = -2)))).toThrow(/state.policy.winTokens\[1\]/);
    expect(() => open(forge((x) => (x.n = 'many')))).toThrow(/state.policy.n: must be a non-negative integer/);
    expect(() => open(forge((x) => ((x.seen as number[])[2] = Infinity)))).toThrow(/state.policy.seen\[2\]/);
    expect(() => open(forge((x) => (x.extra = 1)))).toThrow(/state.policy.extra: is not part of a token/);
    const noPolicy = decodeToken(
      take(core.open({ spec: spec({ weights: ODM.weights }) }), 1).batches[0]!.resumeToken,
      core.catalog.reader.fingerprint,
    ) as TokenPayload<Record<string, unknown>>;
    noPolicy.state.policy = p.state.policy;
    expect(() => open(encodeToken(noPolicy))).toThrow(/state.policy: is set but the token's mixture has no policy/);
    // The policy in the token's spec is checked too (re-hashed, so only the validation can refuse it).
    for (const [edit, why] of [
      [{ lagSteps: 0 }, 'lag 0'],
      [{ lr: NaN }, 'NaN lr'],
      [{ minWeight: -1 }, 'negative floor'],
      [{ name: 'bandit' }, 'unknown policy'],
    ] as const) {
      const q = structuredClone(p) as unknown as { spec: { mixture: { policy: object } }; specHash: string };
      q.spec.mixture.policy = { ...q.spec.mixture.policy, ...edit };
      q.specHash = specHash(q.spec as never);
      expect(() => open(encodeToken(q as never)), why).toThrow(/resume.token.spec.mixture.policy/);
    }
  });
});

describe('bad reports change nothing and are refused naming the problem', () => {
  const cases: [string, (b: WireBatch[]) => RawLossReport, RegExp][] = [
    [
      'NaN loss',
      (b) => ({ step: 2, losses: [{ task: b[2]!.turnTask[0]!, lossSum: NaN, tokens: 5 }] }),
      /loss_sum.*finite non-negative.*NaN/,
    ],
    [
      'negative loss',
      (b) => ({ step: 2, losses: [{ task: b[2]!.turnTask[0]!, lossSum: -1, tokens: 5 }] }),
      /loss_sum.*-1/,
    ],
    [
      'negative tokens',
      (b) => ({ step: 2, losses: [{ task: b[2]!.turnTask[0]!, lossSum: 1, tokens: -3 }] }),
      /tokens.*non-negative integer/,
    ],
    [
      'loss without tokens',
      (b) => ({ step: 2, losses: [{ task: b[2]!.turnTask[0]!, lossSum: 1, tokens: 0 }] }),
      /tokens.*is 0 but loss_sum/,
    ],
    ['unknown task', () => ({ step: 2, losses: [{ task: 100_000, lossSum: 1, tokens: 1 }] }), /unknown task 100000/],
    [
      'duplicate task',
      (b) => ({ step: 2, losses: [1, 2].map(() => ({ task: b[2]!.turnTask[0]!, lossSum: 1, tokens: 1 })) }),
      /appears twice/,
    ],
    [
      'too many entries',
      () => ({
        step: 2,
        losses: Array.from({ length: core.catalog.reader.tasks.length + 1 }, (_, task) => ({
          task,
          lossSum: 1,
          tokens: 1,
        })),
      }),
      /entries but the index has only/,
    ],
    ['a step not served yet', () => ({ step: 3, losses: [] }), /step 3 has not been served yet/],
    ['a step out of order', () => ({ step: 0, losses: [] }), /after a report for step 1.*increasing order/],
  ];
  it.each(cases)('%s', (_, make, message) => {
    const open = (): StreamSession => core.open({ spec: spec(ODM) });
    const ref = open();
    const refBatches = take(ref, 3).batches;
    report(ref, { step: 1, losses: lossesOf(refBatches[1]!) });
    const bad = open();
    const batches = take(bad, 3).batches;
    report(bad, { step: 1, losses: lossesOf(batches[1]!) });
    let err: FlanError | undefined;
    try {
      report(bad, make(batches));
    } catch (e) {
      err = e as FlanError;
    }
    expect(err?.code ?? err?.name).toBeDefined();
    expect(err!.message).toMatch(message);
    expect(err!.message).toMatch(/^losses/);
    // Nothing changed: both go on identically.
    for (const s of [ref, bad]) report(s, { step: 2, losses: lossesOf(batches[2]!) });
    expect(digests(run(bad, 6))).toEqual(digests(run(ref, 6)));
  });

  it('a report past the lag window (after a resume) and a report on an evaluation stream', () => {
    const full = run(core.open({ spec: spec(ODM) }), 10);
    const resumed = core.open({ resume: { token: full[7]!.resumeToken } });
    expect(() => report(resumed, { step: 8 - LAG - 1, losses: [] })).toThrow(/past the lag window.*lag_steps = 3/);
    const evalStream = core.open({ spec: { split: 'test', batchSize: 2, seqLen: 2048, packing: 'none', seed: 0 } });
    take(evalStream, 1);
    expect(() => report(evalStream, { step: 0, losses: [] })).toThrow(/split "train" only.*evaluation stream/);
  });

  it('bad policy specs are refused at open', () => {
    const open = (m: RawMixture): unknown => core.open({ spec: spec(m) });
    expect(() => open({ ...ODM, policy: 'bandit' })).toThrow(
      /mixture.policy.*"bandit" is not one of static, odm, excess-loss/,
    );
    expect(() => open({ weights: ODM.weights, lagSteps: 4 })).toThrow(/lagSteps need a policy/);
    expect(() => open({ ...EXCESS, reference: { speech: 1 } })).toThrow(/reference.*missing: audio, music/);
    expect(() => open({ ...ODM, minWeight: 0.5 })).toThrow(/min_weight.*exceeds 1/);
    expect(() => open({ ...ODM, smoothing: 2 })).toThrow(/smoothing.*\[0, 1\]/);
  });
});
