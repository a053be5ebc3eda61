import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { expectedTargets, worstDeviation, type MixtureCase } from '../helpers/expected-mixture.js';
import { openCore, servedPerTask, take, trainSpec } from '../helpers/core-streams.js';
import { decodeToken } from '../../src/stream/resume-token.js';
import type { TrainState } from '../../src/stream/train-planner.js';
import type { WireBatch } from '../../src/stream/wire-types.js';

let core: DataServiceCore;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
});

const PP = 0.005;

/** Batches until at least `n` examples (turns) were served. */
function serve(spec: ReturnType<typeof trainSpec>, n: number): WireBatch[] {
  const session = core.open({ spec });
  const out: WireBatch[] = [];
  let served = 0;
  while (served < n) {
    const b = take(session, 1).batches[0]!;
    out.push(b);
    served += b.turnTask.length;
  }
  return out;
}

const grid: [string, MixtureCase][] = [
  ['natural', {}],
  ['domains', { weights: { speech: 0.5, music: 0.3, audio: 0.2 } }],
  [
    'major level',
    {
      weights: {
        'speech/Speech Recognition': 1,
        'speech/Speech Generation': 1,
        'music/Global MIR': 1,
        'audio/Audio Caption': 2,
        'audio/Audio Generation': 1,
      },
    },
  ],
  [
    'minor level',
    {
      weights: {
        'speech/Speech Recognition/ASR': 3,
        'music/Music Caption/Music Caption': 1,
        'audio/Audio Generation/Audio Continuation': 1,
        'speech/Speech Caption/Speech Caption': 0.25,
      },
    },
  ],
  [
    'mixed levels',
    {
      weights: {
        speech: 2,
        'music/Global MIR': 1,
        'audio/Audio Caption/Audio Caption': 1,
        'music/Music Generation/Text-to-music': 0.5,
      },
    },
  ],
  ['temperature T=1', { weights: { speech: 1, music: 1, audio: 1 }, within: 'temperature', temperature: 1 }],
  ['temperature T=2', { weights: { speech: 1, music: 1, audio: 1 }, within: 'temperature', temperature: 2 }],
  ['temperature T=5', { within: 'temperature', temperature: 5 }],
  ['uniform', { within: 'uniform' }],
  ['uniform per domain', { weights: { speech: 0.6, music: 0.2, audio: 0.2 }, within: 'uniform' }],
  ['cap 40', { cap: 40 }],
  ['cap 20 with temperature 3', { weights: { speech: 1, audio: 1 }, within: 'temperature', temperature: 3, cap: 20 }],
];

describe('realized proportions track the target (measured from served turns)', () => {
  it.each(grid)('%s: within 0.5 pp per task and per domain after 10k examples (packing none)', (_, m) => {
    const batches = serve(trainSpec({ packing: 'none', batchSize: 64, mixture: m }), 10_000);
    const last = batches[batches.length - 1]!;
    const tasks = core.catalog.reader.tasks;
    const held = new Set(tasks.filter((t) => t.unseen).map((t) => t.id));
    const want = expectedTargets(
      m,
      tasks,
      tasks.map((t) => (held.has(t.id) ? 0 : t.counts[0])),
    );
    last.stats.taskTarget.forEach((p, t) => expect(p).toBeCloseTo(want[t]!, 12));
    const served = servedPerTask(batches, tasks.length);
    // The wire stats count exactly what was served.
    expect(last.stats.taskExamples).toEqual(served);
    for (let t = 0; t < tasks.length; t++) if (want[t] === 0) expect(served[t], tasks[t]!.path).toBe(0);
    const dev = worstDeviation(served, want, (t) => tasks[t]!.domain);
    expect(dev.task).toBeLessThan(PP);
    expect(dev.group).toBeLessThan(PP);
  });

  // Packing holds up to `window` drawn units back; best fit serves long units sooner, so served
  // shares lag the draws by at most the pool. Draws plus the pool (from the token) are exact.
  it.each(grid.filter((_, i) => i % 3 === 1))(
    '%s: with packing packed, served + pooled units track the target exactly',
    (_, m) => {
      const batches = serve(trainSpec({ packing: 'packed', batchSize: 16, mixture: m }), 10_000);
      const tasks = core.catalog.reader.tasks;
      const last = batches[batches.length - 1]!;
      const served = servedPerTask(batches, tasks.length);
      const { state } = decodeToken(last.resumeToken, core.catalog.reader.fingerprint) as { state: TrainState };
      const pooled = served.map(() => 0);
      for (let at = 0; at < state.pool.length;) {
        const turns = state.pool[at++]!;
        for (let k = 0; k < turns; k++, at += 2) pooled[state.pool[at]!]!++;
      }
      const drawn = served.reduce((a, b) => a + b, 0) + pooled.reduce((a, b) => a + b, 0);
      expect(drawn).toBe(state.sampler.drawn);
      served.forEach((n, t) => expect(Math.abs(n + pooled[t]! - drawn * last.stats.taskTarget[t]!)).toBeLessThan(1.5));
      const dev = worstDeviation(served, last.stats.taskTarget, (t) => tasks[t]!.domain);
      expect(Math.max(dev.task, dev.group)).toBeLessThan(256 / 10_000);
    },
  );

  it('multiturn conversations keep the mixture (later turns count toward their own task)', () => {
    const m = { weights: { speech: 0.4, music: 0.3, audio: 0.3 } };
    const batches = serve(trainSpec({ packing: 'multiturn', batchSize: 16, mixture: m }), 10_000);
    const turns = batches.flatMap((b) => b.segTurns);
    expect(turns.some((n) => n > 1)).toBe(true);
    const tasks = core.catalog.reader.tasks;
    const dev = worstDeviation(
      servedPerTask(batches, tasks.length),
      batches[0]!.stats.taskTarget,
      (t) => tasks[t]!.domain,
    );
    expect(dev.task).toBeLessThan(PP);
    expect(dev.group).toBeLessThan(PP);
  });

  it('over-long examples dropped at seq_len 1024 are replaced from their own task, so the mixture holds', () => {
    const m = { weights: { speech: 1, music: 1 } };
    const batches = serve(trainSpec({ packing: 'none', batchSize: 64, seqLen: 1024, mixture: m }), 10_000);
    const last = batches[batches.length - 1]!;
    expect(last.stats.dropped).toBeGreaterThan(0);
    const tasks = core.catalog.reader.tasks;
    const dev = worstDeviation(servedPerTask(batches, tasks.length), last.stats.taskTarget, (t) => tasks[t]!.domain);
    expect(dev.task).toBeLessThan(PP);
  });
});
