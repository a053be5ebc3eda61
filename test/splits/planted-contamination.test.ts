import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { NATURAL } from '../../src/mix/mixture.js';
import { Contamination, REPORT_SLICE } from '../../src/splits/contamination.js';
import { corpusInfoWithContamination } from '../../src/server/corpus-info.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawHeldout } from '../../src/stream/stream-request.js';
import { status as Status } from '@grpc/grpc-js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { startTestServer } from '../helpers/test-server.js';
import { batchesOf, collect } from '../helpers/grpc-stream-calls.js';
import {
  expectedRemovals,
  plantContamination,
  type HeldoutOracle,
  type Planted,
} from '../helpers/plant-contamination.js';
import { drain, openCore, take } from '../helpers/core-streams.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI } from '../helpers/cli.js';

/**
 * Planted contamination: the same codes under other ids, a held-out ASR transcript reused as TTS
 * input, and a dataset shared by two tasks. Each guard removes exactly what the corpus files say
 * (planted records included, nothing else), and train streams never carry a removed record.
 */
const ASR = 'speech/Speech Recognition/ASR';
const TTS = 'speech/Speech Generation/TTS';
const SHARED_DATASET = '43_AudioCaps';
const N = 10;

let dir: string;
let corpus: string;
let core: DataServiceCore;
let planted: Planted;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flanstream-planted-'));
  corpus = join(dir, 'corpus');
  await writeSampleCorpus(corpus, { records: 1500, seed: 11 });
  let x = 7;
  planted = plantContamination(corpus, ASR, TTS, (n) => ((x = (x * 1103515245 + 12345) % 2147483648), x % n));
  await buildIndex({ corpus, out: join(dir, 'index'), workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
  core = await openCore(join(dir, 'index'));
}, 300_000);
afterAll(() => {
  core?.catalog.reader.close();
  rmSync(dir, { recursive: true, force: true });
});

const raw = (o: HeldoutOracle): RawHeldout => ({
  inline: true,
  selectors: [...o.tasks],
  datasets: [...o.datasets],
  excludeSharedAudio: o.sharedAudio,
  excludeOverlappingText: o.ngram,
});
const AUDIO: HeldoutOracle = { tasks: [ASR], datasets: [], sharedAudio: true, ngram: 0 };
const TEXT: HeldoutOracle = { tasks: [ASR], datasets: [], sharedAudio: false, ngram: N };
const DATASET: HeldoutOracle = { tasks: [], datasets: [SHARED_DATASET], sharedAudio: false, ngram: 0 };
const ALL: HeldoutOracle = { tasks: [ASR], datasets: [SHARED_DATASET], sharedAudio: true, ngram: N };

/** Train records of tasks that are not held out, by the guard that removes them (uuid → guard and partner uuid). */
function removed(o: HeldoutOracle): { guard: Contamination; by: Map<string, { guard: string; partner: string }> } {
  const h = core.catalog.named.heldout(raw(o));
  const guard = core.catalog.guard(h)!;
  const by = new Map<string, { guard: string; partner: string }>();
  for (const t of core.catalog.reader.tasks) {
    if (h.tasks.has(t.id)) continue;
    for (const [shard, local] of t.runs[0] ?? []) {
      for (const row of core.catalog.reader.list(shard, local, 0)) {
        const c = guard.classify(shard, row);
        expect(guard.excluded(shard, row)).toBe(c.guard !== undefined);
        if (c.guard)
          by.set(core.catalog.reader.uuid(shard, row), {
            guard: c.guard,
            partner: c.partner >= 0 ? guard.heldUuid(c.partner) : '',
          });
      }
    }
  }
  return { guard, by };
}

const having = (by: Map<string, { guard: string }>, g: string): Set<string> =>
  new Set([...by].filter(([, v]) => v.guard === g).map(([u]) => u));

describe('each guard removes exactly what the corpus files say, planted records included', () => {
  it('exclude_shared_audio: the same codes under another id are removed, with the held-out record they copy', () => {
    const want = expectedRemovals(corpus, AUDIO);
    const { by } = removed(AUDIO);
    expect(having(by, 'audio')).toEqual(want.audio);
    expect([...by.values()].every((v) => v.guard === 'audio')).toBe(true);
    for (const [u, source] of planted.audio) expect(by.get(u), u).toEqual({ guard: 'audio', partner: source });
  });

  it('exclude_overlapping_text: a held-out ASR transcript reused as TTS input is removed, and no other record', () => {
    const want = expectedRemovals(corpus, TEXT);
    const { by } = removed(TEXT);
    expect(having(by, 'text')).toEqual(want.text);
    expect(by.size).toBe(want.text.size);
    for (const u of planted.text.keys()) expect(by.get(u)?.guard, u).toBe('text');
    // The planted TTS inputs collide with the held-out transcript they copy (possibly first with another held-out record of the same words).
    expect([...planted.text.keys()].some((u) => by.get(u)?.partner === planted.text.get(u))).toBe(true);
  });

  it('datasets: every record of a dataset shared by two tasks is held out, whatever its task', () => {
    const ds = core.catalog.reader.datasets.get(SHARED_DATASET)!;
    expect(ds.tasks.size).toBe(2);
    const want = expectedRemovals(corpus, DATASET);
    const { by } = removed(DATASET);
    expect(having(by, 'dataset')).toEqual(want.dataset);
    expect(by.size).toBe([...ds.tasks.values()].reduce((n, c) => n + c[0], 0));
  });

  it('all guards together: the first that applies counts, and the report adds up by guard and held-out task', () => {
    const want = expectedRemovals(corpus, ALL);
    const { guard, by } = removed(ALL);
    for (const g of ['dataset', 'audio', 'text'] as const) expect(having(by, g), g).toEqual(want[g]);
    const report = guard.report();
    for (const g of ['dataset', 'audio', 'text'] as const)
      expect(report.filter((r) => r.guard === g).reduce((n, r) => n + r.removed, 0)).toBe(want[g].size);
    expect(report.find((r) => r.guard === 'dataset')?.heldout).toBe(`dataset ${SHARED_DATASET}`);
    for (const r of report) {
      expect(r.examples.length).toBe(Math.min(3, r.removed));
      for (const [train, heldUuid] of r.examples) expect(by.get(train)).toEqual({ guard: r.guard, partner: heldUuid });
    }
  });
});

describe('streams under all guards, checked uuid by uuid', () => {
  const want = (): ReturnType<typeof expectedRemovals> => expectedRemovals(corpus, ALL);

  it.each([1, 2, 3].flatMap((seed) => (['packed', 'multiturn'] as const).map((packing) => [seed, packing] as const)))(
    'seed %i, %s: no removed or held-out record is served; every other train record is',
    (seed, packing) => {
      const w = want();
      const h = core.catalog.named.heldout(raw(ALL));
      const survivors = new Set<string>();
      for (const t of core.catalog.reader.tasks) {
        if (h.tasks.has(t.id)) continue;
        for (const [shard, local] of t.runs[0] ?? [])
          for (const row of core.catalog.reader.list(shard, local, 0))
            survivors.add(core.catalog.reader.uuid(shard, row));
      }
      const gone = new Set([...w.held, ...w.dataset, ...w.audio, ...w.text]);
      for (const u of gone) survivors.delete(u);
      const served = new Set<string>();
      const session = core.open({
        spec: { split: 'train', batchSize: 16, seqLen: 8192, packing, seed, heldout: raw(ALL) },
      });
      // Multiturn turns credit their own task, which then draws (walks) less: allow a few epochs.
      let examples = 0;
      while (served.size < survivors.size && examples < 10 * survivors.size) {
        for (const b of take(session, 1).batches) {
          for (const u of b.uuids) {
            expect(gone.has(u), u).toBe(false);
            served.add(u);
          }
          examples += b.uuids.length;
        }
      }
      expect(served).toEqual(survivors);
    },
  );

  it('the heldout stream serves every held-out record once (held-out datasets included); dev and test leave them out', () => {
    const w = want();
    const { batches } = drain(
      core.open({ spec: { split: 'heldout', batchSize: 16, seqLen: 8192, packing: 'none', heldout: raw(ALL) } }),
    );
    const uuids = batches.flatMap((b) => b.uuids);
    expect(uuids.length).toBe(new Set(uuids).size);
    expect(new Set(uuids)).toEqual(w.held);
    for (const split of ['dev', 'test']) {
      const dev = drain(
        core.open({ spec: { split, batchSize: 16, seqLen: 8192, packing: 'none', heldout: raw(ALL) } }),
      ).batches.flatMap((b) => b.uuids);
      expect(dev.filter((u) => w.held.has(u))).toEqual([]);
      expect(dev.length).toBeGreaterThan(0);
    }
  });

  it('mixture sizes count only what survives the guards', () => {
    const w = want();
    const h = core.catalog.named.heldout(raw(ALL));
    const gone = new Set([...w.dataset, ...w.audio, ...w.text]);
    const survive = core.catalog.reader.tasks.map((t) => {
      if (h.tasks.has(t.id)) return 0;
      let n = 0;
      for (const [shard, local] of t.runs[0] ?? [])
        for (const row of core.catalog.reader.list(shard, local, 0))
          if (!gone.has(core.catalog.reader.uuid(shard, row))) n++;
      return n;
    });
    const total = survive.reduce((a, b) => a + b, 0);
    const target = core.catalog.resolveMixture(NATURAL, h);
    survive.forEach((n, t) => expect(target[t]).toBeCloseTo(n / total, 12));
    expect(survive.some((n, t) => n === 0 && !h.tasks.has(t))).toBe(true);
  });
});

describe('the report and the fingerprint', () => {
  const heldoutDir = (): string => {
    const d = join(dir, 'heldout');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'planted.yaml'),
      `tasks: ["${ASR}"]\ndatasets: [${SHARED_DATASET}]\nexclude_shared_audio: true\nexclude_overlapping_text: ${N}\n`,
    );
    writeFileSync(join(d, 'none.yaml'), 'tasks: []\n');
    return d;
  };

  it('GetCorpusInfo lists datasets with records per task, and on request what each guard of a named set removes', async () => {
    const server = await startTestServer(join(dir, 'index'), { heldout_dir: heldoutDir(), default_heldout: 'planted' });
    const client = new FlanStreamClient(server.target);
    try {
      const plain = await client.corpusInfo();
      const set = plain.heldoutSets.find((h) => h.name === 'planted')!;
      expect(set).toMatchObject({
        datasets: [SHARED_DATASET],
        excludeOverlappingText: N,
        excludeSharedAudio: true,
        contamination: [],
      });
      const ds = plain.datasets.find((d) => d.name === SHARED_DATASET)!;
      expect(ds.tasks.map((t) => [t.task, t.trainRecords, t.devRecords, t.testRecords])).toEqual(
        [...core.catalog.reader.datasets.get(SHARED_DATASET)!.tasks].map(([t, c]) => [t, ...c]),
      );
      expect(plain.datasets.map((d) => d.name)).toEqual([...core.catalog.reader.datasets.keys()]);
      // The report scans every train record: once per set, a slice of REPORT_SLICE records per
      // event-loop turn; later calls (and GetCorpusInfo) reuse it.
      const catalog = server.server.core.catalog;
      const held = catalog.named.heldout({ name: 'planted' });
      const train = catalog.tasks
        .filter((t) => !held.tasks.has(t.id))
        .reduce((n, t) => n + catalog.table(0).size(t.id), 0);
      const classify = vi.spyOn(Contamination.prototype, 'classify');
      let pauses = 0;
      let info;
      try {
        await corpusInfoWithContamination(catalog, async () => {
          pauses++;
          await new Promise((r) => setImmediate(r));
        });
        expect(pauses).toBe(Math.floor(train / REPORT_SLICE));
        expect(pauses).toBeGreaterThan(0);
        expect(classify.mock.calls.length).toBe(train);
        info = await client.corpusInfo(60_000, { contamination: true });
        await client.corpusInfo(60_000, { contamination: true });
        expect(classify.mock.calls.length).toBe(train);
      } finally {
        classify.mockRestore();
      }
      const want = core.catalog.guard(core.catalog.named.heldout(raw(ALL)))!.report();
      expect(info.heldoutSets.find((h) => h.name === 'planted')!.contamination).toEqual(
        want.map((g) => ({ ...g, examples: g.examples.map(([train, heldout]) => ({ train, heldout })) })),
      );
      expect(info.heldoutSets.find((h) => h.name === 'none')!.contamination).toEqual([]);
      // A token made under the set is refused when the request names other guards; the same set resumes.
      const spec = { split: 'train', batchSize: 4, seqLen: 4096, heldout: { name: 'planted' } };
      const first = await batchesOf(client, spec, 2);
      const token = first[1]!.resumeToken;
      const other = await collect(client, [
        { resume: { token, maxBatches: 1, heldout: { ...raw(ALL), excludeOverlappingText: N + 1 } } },
      ]);
      expect(other.error?.code).toBe(Status.FAILED_PRECONDITION);
      expect(other.error?.message).toContain('held-out set');
      const same = await collect(client, [{ resume: { token, maxBatches: 1, heldout: { name: 'planted' } } }]);
      expect(same.error).toBeUndefined();
      const again = await batchesOf(client, spec, 3);
      expect(Buffer.from(same.batches[0]!.tokens).equals(Buffer.from(again[2]!.tokens))).toBe(true);
      expect(same.batches[0]!.uuids).toEqual(again[2]!.uuids);
    } finally {
      client.close();
      await server.stop();
    }
  }, 120_000);

  it('every guard is part of the held-out fingerprint', () => {
    const variants: HeldoutOracle[] = [
      AUDIO,
      TEXT,
      DATASET,
      ALL,
      { ...ALL, ngram: N + 1 },
      { ...ALL, sharedAudio: false },
      { ...ALL, datasets: [] },
      { ...AUDIO, sharedAudio: false },
    ];
    const prints = variants.map((v) => core.catalog.named.heldout(raw(v)).fingerprint);
    expect(new Set(prints).size).toBe(variants.length);
  });

  it('`flanstream inspect --heldout NAME --contamination` reports, per guard and held-out task, the removed records with examples', () => {
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, `heldout_dir: ${heldoutDir()}\ndefault_heldout: planted\n`);
    const root = join(import.meta.dirname, '..', '..');
    const r = spawnSync(
      process.execPath,
      [CLI, 'inspect', join(dir, 'index'), '--heldout', 'planted', '--contamination', '--config', cfg],
      { cwd: root, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const w = expectedRemovals(corpus, ALL);
    expect(r.stdout).toMatch(/^dataset\s+task\s+train\s+dev\s+test$/m);
    expect(r.stdout).toContain(
      `guards:     datasets ${SHARED_DATASET}; shared audio (same id or same codes); overlapping text (${N}-grams)`,
    );
    expect(r.stdout).toContain(`totals: dataset ${w.dataset.size}, audio ${w.audio.size}, text ${w.text.size}`);
    expect(r.stdout).toMatch(new RegExp(`^dataset\\s+dataset ${SHARED_DATASET}\\s+${w.dataset.size}\\s`, 'm'));
    for (const [u, source] of planted.audio)
      expect(r.stdout.includes(`${u} ~ ${source}`) || !r.stdout.includes(u)).toBe(true);
  }, 60_000);
});
