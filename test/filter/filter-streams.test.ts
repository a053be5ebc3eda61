import { beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanError } from '../../src/errors.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawOpen } from '../../src/stream/stream-request.js';
import { filterCounts } from '../../src/server/corpus-info.js';
import { content, drain, openCore, take, trainSpec } from '../helpers/core-streams.js';
import { readCorpusFields, type CorpusFields } from '../helpers/corpus-fields.js';

/**
 * `StreamSpec.filter` on real streams: every served record is one the filter keeps (checked
 * against the test's own reading of the corpus), held-out tasks stay out, resume is exact and
 * refuses another filter, evaluation streams serve exactly the kept records once, and bad or
 * empty filters are INVALID_ARGUMENT naming the filter.
 */
let core: DataServiceCore;
let byUuid: Map<string, CorpusFields>;
let seconds: number;

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  const records = await readCorpusFields(inject('sampleCorpus'), SAMPLE_AUDIO_ROOT);
  byUuid = new Map(records.map((r) => [r.uuid, r]));
  seconds = [...records.map((r) => r.audio_seconds)].sort((a, b) => a - b)[records.length >> 1]!;
});

const FILTER = (s: number): string => `ug == "generation" and audio_seconds <= ${s} and not domain == "music"`;
const keeps = (r: CorpusFields, s: number): boolean =>
  r.ug === 'generation' && r.audio_seconds <= s && r.domain !== 'music';

function failure(raw: RawOpen): FlanError {
  try {
    const s = core.open(raw);
    take(s, 1);
  } catch (err) {
    if (err instanceof FlanError) return err;
    throw err;
  }
  throw new Error('no error');
}

const uuidsOf = (batches: readonly { uuids: readonly string[] }[]): string[] => batches.flatMap((b) => b.uuids);

describe('stream filters', () => {
  it('serves only records the filter keeps, never a held-out task, and resumes exactly', () => {
    const heldTask = [...byUuid.values()].find((r) => keeps(r, seconds))!.task;
    const spec = trainSpec({
      filter: FILTER(seconds),
      heldout: { inline: true, selectors: [heldTask] },
      batchSize: 4,
      seqLen: 2048,
    });
    const { batches } = take(core.open({ spec }), 24);
    const served = uuidsOf(batches);
    expect(served.length).toBeGreaterThan(50);
    for (const u of served) {
      const r = byUuid.get(u)!;
      expect(keeps(r, seconds), u).toBe(true);
      expect(r.task).not.toBe(heldTask);
    }
    // Without the filter the same stream serves records it leaves out (the test can fail).
    const open = uuidsOf(take(core.open({ spec: { ...spec, filter: '' } }), 24).batches);
    expect(open.some((u) => !keeps(byUuid.get(u)!, seconds))).toBe(true);

    // Resume from batch 10 continues exactly; the token carries the filter (respelled: same filter).
    const token = batches[9]!.resumeToken;
    const again = take(
      core.open({ resume: { token, filter: { text: `  ${FILTER(seconds).replace(/ == /g, '==')}` } } }),
      14,
    );
    expect(again.batches.map(content)).toEqual(batches.slice(10).map(content));
    const other = failure({ resume: { token, filter: { text: 'ug == "generation"' } } });
    expect(other.code).toBe('FAILED_PRECONDITION');
    expect(other.message).toMatch(/filter/);
    expect(failure({ resume: { token, filter: { text: '' } } }).code).toBe('FAILED_PRECONDITION');
  });

  it('serves an evaluation split whole under a filter: every kept record once', () => {
    const spec = {
      split: 'dev',
      batchSize: 8,
      seqLen: 8192,
      packing: 'none',
      filter: 'clips >= 2 or domain == "audio"',
    };
    const { batches, end } = drain(core.open({ spec, resume: null }));
    const served = uuidsOf(batches).sort();
    const held = core.catalog.named.heldout(undefined).tasks;
    const paths = new Set([...held].map((t) => core.catalog.tasks[t]!.path));
    const want = [...byUuid.values()]
      .filter((r) => r.split.includes('dev') && !paths.has(r.task) && (r.clips >= 2 || r.domain === 'audio'))
      .map((r) => r.uuid)
      .sort();
    expect(want.length).toBeGreaterThan(0);
    expect(end).toBeDefined();
    // Records too long for seq_len are dropped and counted, never served twice or outside the filter.
    expect(new Set(served).size).toBe(served.length);
    expect(served.every((u) => want.includes(u))).toBe(true);
    expect(served.length).toBeGreaterThan(want.length * 0.9);
  });

  it('refuses a bad filter or one that keeps nothing, naming it', () => {
    const bad = failure({ spec: trainSpec({ filter: 'audio_seconds == "x"' }) });
    expect(bad.code).toBe('INVALID_ARGUMENT');
    expect(bad.message).toMatch(/^filter: at character 18: "audio_seconds" is a number field/);
    const none = failure({ spec: trainSpec({ filter: 'domain == "space"' }) });
    expect(none.code).toBe('INVALID_ARGUMENT');
    expect(none.message).toContain('domain == "space" keeps no train record');
    const evalNone = failure({
      spec: { split: 'test', batchSize: 2, seqLen: 4096, packing: 'none', filter: 'clips > 99' },
    });
    expect(evalNone.code).toBe('INVALID_ARGUMENT');
    expect(evalNone.message).toContain('clips > 99 keeps no record of the test split');
  });

  it('counts what a filter keeps per task before training (dry run)', async () => {
    const filter = core.catalog.filter(FILTER(seconds))!;
    const counts = (await filterCounts(core.catalog, filter, async () => {})) as {
      tasks: { path: string; trainRecords: number; devRecords: number; testRecords: number }[];
      trainRecords: number;
    };
    const want = new Map<string, number>();
    for (const r of byUuid.values())
      if (keeps(r, seconds) && r.split.includes('train')) want.set(r.task, (want.get(r.task) ?? 0) + 1);
    const got = new Map(counts.tasks.filter((t) => t.trainRecords > 0).map((t) => [t.path, t.trainRecords]));
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...want].sort()));
    expect(counts.trainRecords).toBe([...want.values()].reduce((a, b) => a + b, 0));
  });
});
