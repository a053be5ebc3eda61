import { beforeAll, describe, expect, inject, it } from 'vitest';
import { selectTasks } from '../../src/mix/selectors.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture } from '../../src/stream/stream-request.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { readCorpusFields, type CorpusFields } from '../helpers/corpus-fields.js';
import { openCore, servedPerTask, take, trainSpec, type Spec, mixtureRefusal } from '../helpers/core-streams.js';

/**
 * `source:<value>` mixture selectors against an independent reading of the sample corpus's files:
 * each record's `source` list, task path, splits and unseen flag straight from the JSONL. The
 * rule: a selector takes the tasks whose every train record lists the value.
 */
let core: DataServiceCore;
/** Served records (the index drops the planted bad ones and duplicate uuids) by uuid. */
const byUuid = new Map<string, CorpusFields>();
/** Task path → the source values every train record lists, those some list, and its unseen flag. */
const tasks = new Map<string, { every: Set<string>; some: Set<string>; unseen: boolean }>();

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  const reader = core.catalog.reader;
  const served = new Set<string>();
  reader.manifest.shards.forEach((s, i) => {
    for (let r = 0; r < s.records; r++) if (!reader.isExcluded(i, r)) served.add(reader.uuid(i, r));
  });
  for (const r of await readCorpusFields(inject('sampleCorpus'), SAMPLE_AUDIO_ROOT)) {
    if (!served.has(r.uuid)) continue;
    byUuid.set(r.uuid, r);
    const e = tasks.get(r.task) ?? { every: new Set<string>(r.source), some: new Set<string>(), unseen: false };
    e.unseen ||= r.unseen;
    if (r.split.includes('train')) {
      for (const v of e.every) if (!r.source.includes(v)) e.every.delete(v);
      for (const v of r.source) e.some.add(v);
    }
    tasks.set(r.task, e);
  }
});

/** Task paths whose every train record lists `value`, by the corpus files. */
const pure = (value: string): string[] =>
  [...tasks]
    .filter(([, e]) => e.some.size > 0 && e.every.has(value))
    .map(([p]) => p)
    .sort();

const openError = (mixture: RawMixture): string => mixtureRefusal(core, mixture).message;

describe('selectors along the source axis', () => {
  it('source:X takes exactly the tasks whose every train record lists X, for every value', () => {
    const reader = core.catalog.reader;
    const values = [...new Set([...tasks.values()].flatMap((e) => [...e.some]))].sort();
    expect(values.length).toBeGreaterThan(5);
    // The sample holds tasks where only some records list a value: those are in no group of it.
    expect([...tasks.values()].some((e) => e.some.size > e.every.size)).toBe(true);
    for (const v of values) {
      const got = selectTasks(`source:${v}`, reader)
        .map((t) => reader.tasks[t]!.path)
        .sort();
      expect(got, v).toEqual(pure(v));
    }
  });

  it("weights along source: only the groups' tasks are served, each record listing its group's value, within 0.2 pp at 10k examples", () => {
    const [a, b] = ['studio', 'youtube'];
    expect(pure(a).length).toBeGreaterThanOrEqual(2);
    expect(pure(b).length).toBeGreaterThanOrEqual(2);
    const spec: Spec = trainSpec({
      packing: 'none',
      batchSize: 64,
      mixture: { weights: { [`source:${a}`]: 1, [`source:${b}`]: 3 } },
    });
    const session = core.open({ spec });
    const batches: WireBatch[] = [];
    for (let n = 0; n < 10_000;) {
      const batch = take(session, 1).batches[0]!;
      batches.push(batch);
      n += batch.turnTask.length;
    }
    const reader = core.catalog.reader;
    const served = servedPerTask(batches, reader.tasks.length);
    const n = served.reduce((x, y) => x + y, 0);
    const inGroup = (v: string): number =>
      pure(v).reduce((s, p) => s + served[reader.tasks.find((t) => t.path === p)!.id]!, 0);
    expect(inGroup(a) + inGroup(b)).toBe(n); // nothing else is served
    expect(Math.abs(inGroup(b) / n - 0.75)).toBeLessThan(0.002);
    // Record by record: every served example lists the value of the group its task is in.
    const groupOf = new Map([...pure(a).map((p) => [p, a] as const), ...pure(b).map((p) => [p, b] as const)]);
    let checked = 0;
    for (const batch of batches)
      for (const uuid of batch.uuids) {
        const rec = byUuid.get(uuid)!;
        expect(rec.source, uuid).toContain(groupOf.get(rec.task));
        expect(rec.split).toContain('train');
        checked++;
      }
    expect(checked).toBe(n);
  });
});

describe('bad source selectors are INVALID_ARGUMENT naming them', () => {
  it('an unknown value lists the values the index has', () => {
    expect(openError({ weights: { 'source:vinyl': 1 } })).toMatch(
      /"source:vinyl".*no task has source "vinyl".*this index has audiobook, bbc-sound-effects, beatport, cd, …\)/,
    );
    expect(openError({ weights: { 'source:': 1 } })).toMatch(/no task has source ""/);
  });

  it('a value only some train records of its tasks list says so', () => {
    const partial = [...new Set([...tasks.values()].flatMap((e) => [...e.some].filter((v) => !e.every.has(v))))];
    const only = partial.find((v) => pure(v).length === 0)!;
    expect(only).toBeDefined();
    expect(openError({ weights: { [`source:${only}`]: 1 } })).toMatch(
      new RegExp(`"source:${only}".*also train on records with another source, and a selector takes whole tasks`),
    );
  });

  it('overlapping selectors across axes are refused', () => {
    expect(openError({ weights: { 'source:studio': 1, 'ug:generation': 1 } })).toMatch(
      /selectors "source:studio" and "ug:generation" overlap: both take task /,
    );
    expect(openError({ weights: { 'source:youtube': 1, speech: 1 } })).toMatch(/overlap/);
  });
});
