import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset } from '../../clients/ts/flanstream-client.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { loadChatml, singleLength, type Chatml } from '../helpers/chatml.js';
import { openCore, drain, take, trainSpec, type Spec } from '../helpers/core-streams.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Held-out items that fit no row are said when an evaluation stream opens: the first batch of
 * every call carries the per-task count (Batch.task_dropped) and the seq_len that would fit them
 * (dropped_fit_seq_len), and the end message repeats the same count. Checked against the test's
 * own count: the held-out items from the corpus's JSONL files (every record of a task any of
 * whose records says unseen: true), each measured as a whole single-turn ChatML segment.
 */
const L = 1024;
let core: DataServiceCore;
let facts: IndexFacts;
let tpl: Chatml;
/** Per task id: held-out items too long for L; and the longest of them. */
let want: number[];
let longest = 0;
let items = 0;

function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
  );
}

const first = (v: unknown): string => String(Array.isArray(v) ? v[0] : v);

/** uuids of the records of every task that has an unseen record, read from the corpus files. */
function unseenItems(corpus: string): string[] {
  const byTask = new Map<string, string[]>();
  const unseen = new Set<string>();
  for (const f of walk(join(corpus, 'metadata')).filter((p) => /\.jsonl(\.gz)?$/.test(p))) {
    const raw = readFileSync(f);
    for (const line of (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n')) {
      let r: { uuid?: string; domain?: string; task_type?: Record<string, unknown> };
      try {
        r = JSON.parse(line) as typeof r;
      } catch {
        continue; // a line the indexer quarantines
      }
      if (!r.uuid || !r.task_type) continue;
      const path = `${r.domain}/${first(r.task_type.major)}/${first(r.task_type.minor)}`;
      byTask.set(path, [...(byTask.get(path) ?? []), r.uuid]);
      if (r.task_type.unseen === true) unseen.add(path);
    }
  }
  return [...unseen].flatMap((p) => byTask.get(p)!);
}

const spec = (over: Partial<Spec> = {}): Spec => ({
  split: 'heldout',
  heldout: { name: 'unseen-flag' },
  batchSize: 8,
  seqLen: L,
  packing: 'none',
  seed: 0,
  overlong: 'drop',
  ...over,
});

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
  tpl = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer);
  want = core.catalog.reader.tasks.map(() => 0);
  for (const uuid of unseenItems(inject('sampleCorpus'))) {
    const r = facts.byUuid.get(uuid);
    if (!r) continue; // quarantined at index time: not an item
    items++;
    const n = singleLength(tpl, r);
    if (n > L) {
      want[r.task]!++;
      longest = Math.max(longest, n);
    }
  }
});

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

describe('held-out items that fit no row', () => {
  it('are counted on the first batch, equal to the end message and to the corpus count', () => {
    expect(sum(want)).toBeGreaterThan(0);
    const { batches, end } = drain(core.open({ spec: spec() }));
    expect(end.totalExamples).toBe(items);
    expect(batches[0]!.taskDropped).toEqual(want);
    expect(end.taskDropped).toEqual(want);
    expect(batches[0]!.droppedFitSeqLen).toBe(longest);
    // Said once per call: later batches carry nothing.
    expect(batches.slice(1).every((b) => b.taskDropped.length === 0 && b.droppedFitSeqLen === 0)).toBe(true);
  });

  it('the seq_len it names serves every item', () => {
    const { batches, end } = drain(core.open({ spec: spec({ seqLen: longest }) }));
    expect(sum(batches[0]!.taskDropped)).toBe(0);
    expect(batches[0]!.droppedFitSeqLen).toBe(0);
    expect(sum(end.taskDropped)).toBe(0);
    expect(end.examples).toBe(items);
  });

  it('overlong "truncate" drops only what fits no row even truncated, said at open as at the end', () => {
    const { batches, end } = drain(core.open({ spec: spec({ overlong: 'truncate' }) }));
    expect(batches[0]!.taskDropped).toEqual(end.taskDropped);
    expect(sum(end.taskDropped)).toBeLessThanOrEqual(sum(want));
  });

  it('every call says it again: a resumed stream and each rank of several', () => {
    const { batches } = take(core.open({ spec: spec() }), 3);
    const resumed = take(core.open({ resume: { token: batches[1]!.resumeToken } }), 1).batches[0]!;
    expect(resumed.taskDropped).toEqual(want);
    for (const rank of [0, 1]) {
      const b = take(core.open({ spec: spec({ rank, worldSize: 2 }) }), 1).batches[0]!;
      expect(b.taskDropped).toEqual(want);
    }
  });

  it('train streams carry none', () => {
    const b = take(core.open({ spec: trainSpec({ seqLen: L, packing: 'none' }) }), 2).batches;
    expect(b.every((x) => x.taskDropped.length === 0 && x.droppedFitSeqLen === 0)).toBe(true);
  });
});

describe('held-out items that fit no row, over gRPC with the TS client', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
  });
  afterAll(async () => {
    await ts?.stop();
  });

  it('the dataset knows them from its first batch, by task path, as the summary does at the end', async () => {
    const paths = core.catalog.reader.tasks.map((t) => t.path);
    const byPath = Object.fromEntries(want.flatMap((n, t) => (n > 0 ? [[paths[t]!, n]] : [])));
    const ds = new FlanStreamDataset(ts.target, {
      split: 'heldout',
      heldout: 'unseen-flag',
      batchSize: 8,
      seqLen: L,
      packing: 'none',
      overlong: 'drop',
    });
    let n = 0;
    for await (const b of ds) {
      if (n++ === 0) {
        expect(b.droppedAtOpen).toEqual({ dropped: byPath, totalDropped: sum(want), fitSeqLen: longest });
        expect(ds.droppedAtOpen).toEqual(b.droppedAtOpen);
        expect(ds.summary).toBeNull();
      } else expect(b.droppedAtOpen).toBeUndefined();
    }
    expect(ds.summary!.dropped).toEqual(byPath);
    expect(ds.summary!.totalDropped).toBe(sum(want));
    ds.close();
  });
});
