import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { FlanError } from '../../src/errors.js';
import { resolveMixture, type MixtureSpec } from '../../src/mix/mixture.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture } from '../../src/stream/stream-request.js';
import { expectedTargets } from '../helpers/expected-mixture.js';
import { openCore, take, trainSpec, mixtureRefusal } from '../helpers/core-streams.js';

let core: DataServiceCore;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
});

/** Train sizes under a held-out set (0 for held-out tasks), from the manifest's counts. */
function trainSizes(held: ReadonlySet<number>): number[] {
  return core.catalog.reader.tasks.map((t) => (held.has(t.id) ? 0 : t.counts[0]));
}

const openError = (mixture: RawMixture, heldout?: { name: string }): FlanError =>
  mixtureRefusal(core, mixture, heldout);

describe('mixture validation (INVALID_ARGUMENT naming the offending selector or field)', () => {
  it.each([
    [
      { weights: { speech: 1, 'speech/Speech Recognition': 1 } },
      /"speech".*"speech\/Speech Recognition"|"speech\/Speech Recognition".*"speech"/,
    ],
    [{ weights: { 'music/Global MIR/Key Detection': 1, 'music/Global MIR': 2, audio: 1 } }, /overlap/],
    [
      { weights: { 'speech/Speech Recognition/ASR': 1, 'speech/Speech Recognition/ASR ': 1 } },
      /"speech\/Speech Recognition\/ASR "/,
    ],
    [{ weights: { 'speech/Speech Recognition/Lip Reading': 1 } }, /Lip Reading.*matches no task/],
    [{ weights: { Speech: 1 } }, /"Speech".*matches no task/],
    [{ weights: { 'speech/': 1 } }, /"speech\/".*matches no task/],
    [{ weights: { speech: -0.5, music: 1 } }, /"speech".*non-negative/],
    [{ weights: { speech: Number.NaN } }, /"speech".*finite/],
    [{ weights: { speech: 0, music: 0, audio: 0 } }, /all weights are zero/],
    [{ weights: { speech: 1 }, within: 'softmax' }, /within/],
    [{ within: 'temperature', temperature: -2 }, /temperature/],
    [{ cap: -5 }, /cap/],
    [{ cap: 2.5 }, /cap/],
  ] as [RawMixture, RegExp][])('%j is rejected', (mixture, message) => {
    expect(openError(mixture).message).toMatch(message);
  });

  it('rejects weight on a held-out task, naming it', () => {
    expect(
      openError({ weights: { 'music/Single Music Reasoning': 1, speech: 1 } }, { name: 'music-reasoning' }).message,
    ).toMatch(/"music\/Single Music Reasoning".*held-out/);
    expect(
      openError({ weights: { 'music/Multiple Music Reasoning/Tempo Comparison': 1 } }, { name: 'music-reasoning' })
        .message,
    ).toMatch(/Tempo Comparison.*held-out/);
    // The default held-out set (unseen-flag) holds out the tasks whose records say unseen.
    expect(openError({ weights: { 'speech/Speaker Recognition/Speaker Diarization': 1, music: 1 } }).message).toMatch(
      /Speaker Diarization.*held-out/,
    );
    // A selector that merely contains held-out tasks spreads over its other tasks.
    expect(() =>
      core.open({ spec: { ...trainSpec(), mixture: { weights: { music: 1 } }, heldout: { name: 'music-reasoning' } } }),
    ).not.toThrow();
  });

  it('rejects the same mistakes in a live update, naming mixture_update', () => {
    const session = core.open({ spec: trainSpec() });
    const bad: Record<string, number>[] = [
      { speech: 1, 'speech/Speech Caption': 1 },
      { nowhere: 1 },
      { speech: -1 },
      { speech: 0 },
      { 'speech/Speaker Recognition/Speaker Diarization': 1 },
    ];
    for (const weights of bad) {
      expect(() => session.addUpdate(core.update({ weights, applyAtStep: 5 }))).toThrow(/mixture_update/);
    }
    expect(() => core.update({ weights: { speech: 1 }, applyAtStep: -1 })).toThrow(/apply_at_step/);
  });

  it('is unit-level exact: resolveMixture matches the contract formula', () => {
    const tasks = core.catalog.reader.tasks;
    const held = new Set([0, 5]);
    const sizes = trainSizes(held);
    const cases: MixtureSpec[] = [
      { weights: {}, within: 'proportional', temperature: 1, cap: 0 },
      { weights: { speech: 2, music: 1, 'audio/Audio Caption': 1 }, within: 'uniform', temperature: 1, cap: 0 },
      { weights: { speech: 1, audio: 1 }, within: 'temperature', temperature: 3.3, cap: 25 },
    ];
    for (const m of cases) {
      const got = Array.from(resolveMixture(m, core.catalog.reader, sizes, held));
      const want = expectedTargets(m, tasks, sizes);
      got.forEach((p, t) => expect(p).toBeCloseTo(want[t]!, 12));
      expect(got[0]).toBe(0);
      expect(got[5]).toBe(0);
    }
  });
});

describe('named mixtures', () => {
  it.each(['natural', 'balanced-domains', 'flan-cap-3000', 'temperature-3'])(
    '%s resolves to its formula and streams',
    (name) => {
      const named = core.catalog.settings.mixtures[name];
      expect(named).toBeDefined();
      const session = core.open({ spec: { ...trainSpec(), packing: 'none', mixture: { name } } });
      const { batches } = take(session, 2);
      const held = session.heldout.tasks;
      const want = expectedTargets(named!, core.catalog.reader.tasks, trainSizes(held));
      const got = batches[1]!.stats.taskTarget;
      got.forEach((p, t) => expect(p, core.catalog.reader.tasks[t]!.path).toBeCloseTo(want[t]!, 12));
      for (const t of held) expect(got[t]).toBe(0);
      expect(got.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    },
  );

  it('balanced-domains gives each domain one third', () => {
    const { batches } = take(core.open({ spec: { ...trainSpec(), mixture: { name: 'balanced-domains' } } }), 1);
    for (const d of batches[0]!.stats.domainTarget) expect(d).toBeCloseTo(1 / 3, 12);
  });

  it('an unknown name is INVALID_ARGUMENT naming mixture.name', () => {
    expect(openError({ name: 'flan-cap-9000' }).message).toMatch(/mixture\.name.*flan-cap-9000/);
  });
});
