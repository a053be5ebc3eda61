import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DatasetEntry } from '../../src/index/datasets.js';
import type { TaskEntry } from '../../src/index/format.js';
import { selectTasks, whyNoMatch } from '../../src/mix/selectors.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture } from '../../src/stream/stream-request.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import {
  content,
  openCore,
  servedPerTask,
  take,
  trainSpec,
  type Spec,
  mixtureRefusal,
} from '../helpers/core-streams.js';

/**
 * Mixture selectors along the axes beside the task path (ug, dataset, unseen), checked against an
 * independent reading of the sample corpus's files: each record's U/G, task path and dataset
 * folder, straight from the JSONL.
 */
let core: DataServiceCore;
/** Task path → its U/G and the datasets holding its train records, read from the corpus files. */
const corpus = new Map<string, { ug: Set<string>; datasets: Set<string>; unseen: boolean }>();

const one = (v: unknown): string => String(Array.isArray(v) ? v[0] : v);

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  const root = join(inject('sampleCorpus'), 'metadata');
  for (const domain of readdirSync(root))
    for (const ug of readdirSync(join(root, domain)))
      for (const folder of readdirSync(join(root, domain, ug)))
        for (const dataset of readdirSync(join(root, domain, ug, folder))) {
          const dir = join(root, domain, ug, folder, dataset, 'jsonl');
          for (const file of readdirSync(dir)) {
            const raw = readFileSync(join(dir, file));
            const text = file.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
            for (const line of text.split('\n')) {
              let rec: Record<string, unknown>;
              try {
                rec = JSON.parse(line) as Record<string, unknown>;
              } catch {
                continue; // the sample plants bad lines; the index quarantines them
              }
              const tt = rec.task_type as Record<string, unknown> | undefined;
              if (!tt || typeof rec.domain !== 'string') continue;
              const path = `${rec.domain}/${one(tt.major)}/${one(tt.minor)}`;
              const e = corpus.get(path) ?? { ug: new Set(), datasets: new Set(), unseen: false };
              e.ug.add(one(tt['U/G']));
              e.unseen ||= tt.unseen === true;
              const splits = Array.isArray(rec.split) ? rec.split : [rec.split];
              if (splits.includes('train')) e.datasets.add(dataset);
              corpus.set(path, e);
            }
          }
        }
});

function serve(spec: Spec, n: number): WireBatch[] {
  const session = core.open({ spec });
  const out: WireBatch[] = [];
  for (let served = 0; served < n;) {
    const b = take(session, 1).batches[0]!;
    out.push(b);
    served += b.turnTask.length;
  }
  return out;
}

const openError = (mixture: RawMixture): string => mixtureRefusal(core, mixture).message;

describe('selectors along the ug axis', () => {
  it('ug:generation / ug:understanding: targets by the formula, realized within 0.2 pp at 10k examples', () => {
    const tasks = core.catalog.reader.tasks;
    const ugOf = (t: TaskEntry): string => {
      const e = corpus.get(t.path);
      expect(e?.ug.size, t.path).toBe(1);
      return [...e!.ug][0]!;
    };
    // The default held-out set holds out the tasks whose records say unseen.
    const size = tasks.map((t) => (corpus.get(t.path)?.unseen ? 0 : t.counts[0]));
    const W = { generation: 0.35, understanding: 0.65 } as Record<string, number>;
    const total = (ug: string): number => tasks.reduce((s, t) => s + (ugOf(t) === ug ? size[t.id]! : 0), 0);
    const want = tasks.map((t) => (W[ugOf(t)]! * size[t.id]!) / total(ugOf(t)));

    const batches = serve(
      trainSpec({
        packing: 'none',
        batchSize: 64,
        mixture: { weights: { 'ug:generation': 0.35, 'ug:understanding': 0.65 } },
      }),
      10_000,
    );
    const last = batches.at(-1)!;
    last.stats.taskTarget.forEach((p, t) => expect(p, tasks[t]!.path).toBeCloseTo(want[t]!, 12));
    const served = servedPerTask(batches, tasks.length);
    const n = served.reduce((a, b) => a + b, 0);
    expect(n).toBeGreaterThanOrEqual(10_000);
    const gen = tasks.reduce((s, t) => s + (ugOf(t) === 'generation' ? served[t.id]! : 0), 0);
    expect(Math.abs(gen / n - 0.35)).toBeLessThan(0.002);
  });

  it('within decides the split inside each group (uniform: every task of a group alike)', () => {
    const b = take(
      core.open({
        spec: trainSpec({ mixture: { weights: { 'ug:generation': 1, 'ug:understanding': 3 }, within: 'uniform' } }),
      }),
      1,
    ).batches[0]!;
    const tasks = core.catalog.reader.tasks;
    for (const ug of ['generation', 'understanding']) {
      const live = tasks.filter((t) => t.ug === ug && !t.unseen && t.counts[0] > 0);
      for (const t of live)
        expect(b.stats.taskTarget[t.id]).toBeCloseTo((ug === 'generation' ? 0.25 : 0.75) / live.length, 12);
    }
  });
});

describe('selectors along the dataset and unseen axes', () => {
  it('dataset:NN_Name serves exactly the tasks whose train records all come from that dataset', () => {
    const pure = (d: string): string[] =>
      [...corpus]
        .filter(([, e]) => e.datasets.size === 1 && e.datasets.has(d) && !e.unseen)
        .map(([p]) => p)
        .sort();
    // Two datasets holding several tasks each.
    const names = [...core.catalog.reader.datasets.keys()].filter((d) => pure(d).length >= 2).slice(0, 2);
    expect(names).toHaveLength(2);
    const mixture = { weights: { [`dataset:${names[0]}`]: 1, [`dataset:${names[1]}`]: 3 } };
    const batches = serve(trainSpec({ packing: 'none', batchSize: 64, mixture }), 4000);
    const tasks = core.catalog.reader.tasks;
    const served = servedPerTask(batches, tasks.length);
    const byDataset = names.map((d) => pure(d).reduce((s, p) => s + served[tasks.find((t) => t.path === p)!.id]!, 0));
    const n = served.reduce((a, b) => a + b, 0);
    expect(byDataset[0]! + byDataset[1]!).toBe(n); // nothing else is served
    expect(Math.abs(byDataset[1]! / n - 0.75)).toBeLessThan(0.002);
  });

  it('unseen:false serves the seen tasks; unseen:true names only held-out tasks under the default set', () => {
    const batches = take(core.open({ spec: trainSpec({ mixture: { weights: { 'unseen:false': 1 } } }) }), 3).batches;
    const unseen = core.catalog.reader.tasks.filter((t) => corpus.get(t.path)?.unseen).map((t) => t.id);
    expect(unseen.length).toBeGreaterThan(0);
    for (const t of unseen) expect(batches[2]!.stats.taskTarget[t]).toBe(0);
    expect(openError({ weights: { 'unseen:true': 1 } })).toMatch(/"unseen:true".*held-out/);
    // With no held-out set, the unseen tasks can be weighted like any other group.
    const open = core.open({
      spec: {
        ...trainSpec(),
        heldout: { name: 'none' },
        mixture: { weights: { 'unseen:true': 1, 'unseen:false': 1 } },
      },
    });
    const target = take(open, 1).batches[0]!.stats.taskTarget;
    expect(unseen.reduce((s, t) => s + target[t]!, 0)).toBeCloseTo(0.5, 12);
  });

  it('a task drawing train records from two datasets matches neither dataset selector, and the error says so', () => {
    const task = (id: number, path: string): TaskEntry => ({ id, path, domain: 'speech', major: 'M' }) as TaskEntry;
    const tasks = [task(0, 'speech/M/a'), task(1, 'speech/M/b')];
    const entry = (name: string, paths: string[]): DatasetEntry => ({
      name,
      shards: [],
      tasks: new Map(paths.map((p) => [p, [5, 0, 0] as const])),
    });
    const index = {
      tasks,
      datasets: new Map([
        ['01_A', entry('01_A', ['speech/M/a', 'speech/M/b'])],
        ['02_B', entry('02_B', ['speech/M/b'])],
      ]),
    };
    expect(selectTasks('dataset:01_A', index)).toEqual([0]);
    expect(selectTasks('dataset:02_B', index)).toEqual([]);
    expect(whyNoMatch('dataset:02_B', index)).toMatch(/speech\/M\/b also train on records with another dataset/);
    expect(whyNoMatch('dataset:03_C', index)).toMatch(/no task has dataset "03_C".*01_A, 02_B/);
  });
});

describe('bad axis selectors are INVALID_ARGUMENT naming them', () => {
  it.each([
    [{ 'ug:generation': 1, speech: 1 }, /"speech" and "ug:generation" overlap: both take task speech\//],
    [{ 'ug:understanding': 1, 'unseen:false': 1 }, /overlap/],
    [{ 'ug:both': 1 }, /"ug:both".*no task has ug "both".*generation, understanding/],
    [{ 'colour:red': 1 }, /"colour:red".*"colour" is not an axis \(ug, unseen, dataset/],
    [{ 'dataset:99_Nothing': 1 }, /"dataset:99_Nothing".*no task has dataset/],
    [{ 'unseen:maybe': 1 }, /true or false/],
  ] as [Record<string, number>, RegExp][])('%j', (weights, message) => {
    expect(openError({ weights })).toMatch(message);
  });
});

describe('axis selectors in updates, tokens and policies', () => {
  const UG = { weights: { 'ug:generation': 0.5, 'ug:understanding': 0.5 } };

  it('a live update to axis weights applies at its step, and a token resumes it exactly', () => {
    const spec = trainSpec({ mixture: { weights: { speech: 1, music: 1 } } });
    const updates = [{ ...UG, applyAtStep: 4 }];
    const full = take(core.open({ spec, updates }), 10).batches;
    const gen = core.catalog.reader.tasks.filter((t) => t.ug === 'generation').map((t) => t.id);
    expect(gen.reduce((s, t) => s + full[3]!.stats.taskTarget[t]!, 0)).not.toBeCloseTo(0.5, 6);
    expect(gen.reduce((s, t) => s + full[4]!.stats.taskTarget[t]!, 0)).toBeCloseTo(0.5, 12);
    for (const k of [2, 6]) {
      // A token saved before the apply step gets the update sent again; one after it carries the weights.
      const again = k < 4 ? updates : [];
      const resumed = take(core.open({ resume: { token: full[k]!.resumeToken }, updates: again }), 10 - k - 1).batches;
      resumed.forEach((b, j) => expect(content(b)).toBe(content(full[k + 1 + j]!)));
    }
  });

  it('a policy takes the axis selectors as its arms: the group with the higher loss gains weight', () => {
    const tasks = core.catalog.reader.tasks;
    const session = core.open({
      spec: trainSpec({
        batchSize: 4,
        seqLen: 2048,
        mixture: {
          ...UG,
          policy: 'excess-loss',
          lagSteps: 1,
          reference: { 'ug:generation': 1, 'ug:understanding': 1 },
        },
      }),
    });
    let last: WireBatch | undefined;
    for (let i = 0; i < 12; i++) {
      const b = take(session, 1).batches[0]!;
      last = b;
      const per = new Map<number, number>();
      for (const t of b.turnTask) per.set(t, (per.get(t) ?? 0) + 10);
      const losses = [...per].map(([task, n]) => ({
        task,
        tokens: n,
        lossSum: n * (tasks[task]!.ug === 'generation' ? 3 : 1.5),
      }));
      session.addReport(core.lossReport({ step: b.step, losses }, session.heldout));
    }
    const gen = tasks.filter((t) => t.ug === 'generation').reduce((s, t) => s + last!.stats.taskTarget[t.id]!, 0);
    expect(gen).toBeGreaterThan(0.6);
  });
});
