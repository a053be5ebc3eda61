import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { readManifest } from '../../src/index/manifest-io.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { collect, corpusInfo, dataClient, httpGet, scrape, sleep, sumOf, type DataClient } from './helpers/grpc.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

/**
 * /metrics after real streams: every counter equals what the client actually received, batch by
 * batch (examples and text/audio tokens per task, padding, fill and build-time histograms),
 * plus the active-streams, mixture, cache and quarantine gauges.
 */
describe('prometheus metrics', () => {
  let ts: TestServer;
  let c: DataClient;
  let tasks: { path: string; domain: string }[];
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    c = dataClient(ts.target);
    tasks = (await corpusInfo(c)).tasks;
  });
  afterAll(async () => {
    c?.close();
    await ts?.stop();
  });

  /** What the client saw, aggregated the way the server's counters are labelled. */
  function tally(batches: WireBatch[]): {
    examples: Map<number, number>;
    text: Map<number, number>;
    audio: Map<number, number>;
    padding: number;
    packed: number;
  } {
    const add = (m: Map<number, number>, k: number, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
    const t = {
      examples: new Map<number, number>(),
      text: new Map<number, number>(),
      audio: new Map<number, number>(),
      padding: 0,
      packed: 0,
    };
    for (const b of batches) {
      b.segTask.forEach((task, k) => {
        add(t.text, task, b.segTextTokens[k] ?? 0);
        add(t.audio, task, b.segAudioTokens[k] ?? 0);
      });
      for (const task of b.turnTask) add(t.examples, task, 1);
      for (const e of b.examples) add(t.examples, e.task, 1);
      if (b.examples.length === 0) {
        t.packed++;
        t.padding += b.batchSize * b.seqLen - b.segLength.reduce((a, x) => a + x, 0);
      }
    }
    return t;
  }

  it('counts exactly the batches, examples and tokens the clients received', async () => {
    const train = await collect(c, {
      spec: { split: 'train', batchSize: 4, seqLen: 1024, packing: 'packed', seed: 3, maxBatches: 25 },
    });
    const multi = await collect(c, {
      spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: 'multiturn', seed: 4, maxBatches: 10 },
    });
    const evalItems = await collect(c, {
      spec: {
        split: 'heldout',
        batchSize: 3,
        seqLen: 2048,
        packing: 'examples',
        heldout: { name: 'music-reasoning' },
        maxBatches: 4,
      },
    });
    for (const r of [train, multi, evalItems]) {
      expect(r.error).toBeUndefined();
      expect(r.end?.reason).toBe('max_batches');
    }
    expect(evalItems.batches.flatMap((b) => b.examples).length).toBeGreaterThan(0);
    const batches = [...train.batches, ...multi.batches, ...evalItems.batches];
    const m = await scrape(ts.server.httpPort);
    const t = tally(batches);

    expect(sumOf(m, 'flanstream_batches_total')).toBe(39);
    expect(sumOf(m, 'flanstream_batch_build_seconds_count')).toBe(39);
    expect(sumOf(m, 'flanstream_batch_fill_ratio_count')).toBe(t.packed);
    expect(sumOf(m, 'flanstream_stream_ends_total', { reason: 'max_batches' })).toBe(3);
    tasks.forEach((task, i) => {
      const labels = { domain: task.domain, task: task.path };
      expect(sumOf(m, 'flanstream_examples_total', labels), `examples of ${task.path}`).toBe(t.examples.get(i) ?? 0);
      expect(sumOf(m, 'flanstream_tokens_total', { ...labels, kind: 'text' }), `text tokens of ${task.path}`).toBe(
        t.text.get(i) ?? 0,
      );
      expect(sumOf(m, 'flanstream_tokens_total', { ...labels, kind: 'audio' }), `audio tokens of ${task.path}`).toBe(
        t.audio.get(i) ?? 0,
      );
    });
    expect(sumOf(m, 'flanstream_examples_total')).toBe([...t.examples.values()].reduce((a, x) => a + x, 0));
    expect(sumOf(m, 'flanstream_tokens_total', { kind: 'padding' })).toBe(t.padding);
    // Per-domain totals are sums over the domain's tasks: what a dashboard's sum by (domain) shows.
    for (const d of ['speech', 'music', 'audio']) {
      const want = tasks.reduce((a, task, i) => a + (task.domain === d ? (t.examples.get(i) ?? 0) : 0), 0);
      expect(sumOf(m, 'flanstream_examples_total', { domain: d })).toBe(want);
    }
    // Audio seconds per domain (codec frames / frame rate): what the train streams' own stats report.
    const seconds = (d: number): number =>
      [train, multi].reduce((a, r) => a + (r.batches.at(-1)!.stats.domainAudioSeconds?.[d] ?? NaN), 0);
    ['speech', 'music', 'audio'].forEach((d, i) =>
      expect(sumOf(m, 'flanstream_audio_seconds_total', { domain: d }), d).toBeCloseTo(seconds(i), 6),
    );
    expect(seconds(0)).toBeGreaterThan(0);
    const payload = batches.reduce((a, b) => a + b.tokens.length + b.resumeToken.length, 0);
    expect(sumOf(m, 'flanstream_bytes_sent_total')).toBeGreaterThan(payload);
    expect(sumOf(m, 'flanstream_cache_hits_total') + sumOf(m, 'flanstream_cache_misses_total')).toBeGreaterThan(0);
    expect(sumOf(m, 'flanstream_active_streams')).toBe(0);
  });

  it('reports the quarantine of the index per reason and the records served', async () => {
    // The sample corpus is clean: damage a copy so the index quarantines a few records.
    const dir = mkdtempSync(join(tmpdir(), 'flanstream-quarantine-'));
    try {
      const corpus = join(dir, 'corpus');
      await writeSampleCorpus(corpus, { records: 300, seed: 1 });
      const jsonl = readdirSync(corpus, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.jsonl'))
        .sort();
      appendFileSync(join(corpus, jsonl[0]!), 'this is not json\n{"instruction": 7}\n');
      appendFileSync(join(corpus, jsonl[1]!), '{"broken": \n');
      await buildIndex({ corpus, out: join(dir, 'index'), workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
      const manifest = readManifest(join(dir, 'index'));
      expect(manifest.quarantined).toBeGreaterThanOrEqual(3);
      const other = await startTestServer(join(dir, 'index'));
      try {
        const m = await scrape(other.server.httpPort);
        for (const [reason, n] of Object.entries(manifest.quarantineByReason)) {
          expect(m.get(`flanstream_quarantined_records{reason="${reason}"}`), reason).toBe(n);
        }
        expect(sumOf(m, 'flanstream_quarantined_records')).toBe(manifest.quarantined);
        expect(sumOf(m, 'flanstream_index_records')).toBe(manifest.records);
      } finally {
        await other.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts train steps the ranks of a job share instead of planning each', async () => {
    const spec = {
      split: 'train',
      batchSize: 2,
      seqLen: 1024,
      packing: 'packed',
      seed: 31,
      worldSize: 3,
      maxBatches: 5,
    };
    const before = await scrape(ts.server.httpPort);
    const ranks = await Promise.all([0, 1, 2].map((rank) => collect(c, { spec: { ...spec, rank } })));
    expect(ranks.map((r) => r.batches.length)).toEqual([5, 5, 5]);
    const m = await scrape(ts.server.httpPort);
    const delta = (name: string): number => sumOf(m, name) - sumOf(before, name);
    // Each of the 5 steps planned once (a miss) and taken twice from the cache, whatever the order.
    expect([delta('flanstream_plan_cache_misses_total'), delta('flanstream_plan_cache_hits_total')]).toEqual([5, 10]);
    expect(sumOf(m, 'flanstream_plan_cache_rows')).toBe(0);
  });

  it('gauges open streams and their target versus realized mixture while they run', async () => {
    let cancel: (() => void) | undefined;
    const weights = { speech: 2, music: 1, audio: 1 };
    const running = collect(
      c,
      { spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 8, mixture: { weights } } },
      {
        onCall: (call) => (cancel = () => call.cancel()),
        // A slow reader: the stream stays open while we scrape.
        onBatch: () => sleep(20),
      },
    );
    let m = await scrape(ts.server.httpPort);
    for (
      let i = 0;
      i < 100 && sumOf(m, 'flanstream_mixture_proportion', { domain: 'speech', kind: 'realized' }) === 0;
      i++
    ) {
      await sleep(50);
      m = await scrape(ts.server.httpPort);
    }
    expect(sumOf(m, 'flanstream_active_streams')).toBe(1);
    expect(sumOf(m, 'flanstream_mixture_proportion', { domain: 'speech', kind: 'target' })).toBeCloseTo(0.5, 6);
    expect(sumOf(m, 'flanstream_mixture_proportion', { domain: 'music', kind: 'target' })).toBeCloseTo(0.25, 6);
    expect(sumOf(m, 'flanstream_mixture_proportion', { kind: 'realized' })).toBeCloseTo(1, 6);
    // No update: the shares since the last update are those since the start; the recent window's add up too.
    expect(sumOf(m, 'flanstream_mixture_proportion', { kind: 'realized_since_update' })).toBeCloseTo(1, 6);
    expect(sumOf(m, 'flanstream_mixture_proportion', { kind: 'realized_recent' })).toBeCloseTo(1, 6);
    cancel?.();
    await running;
    for (let i = 0; i < 100 && sumOf(m, 'flanstream_active_streams') !== 0; i++) {
      await sleep(20);
      m = await scrape(ts.server.httpPort);
    }
    expect(sumOf(m, 'flanstream_active_streams')).toBe(0);
    expect(sumOf(m, 'flanstream_mixture_proportion')).toBe(0);
  });

  it('declares running totals as counters, and the exposition passes promtool', async () => {
    const before = await scrape(ts.server.httpPort);
    await collect(c, {
      spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 9, maxBatches: 5 },
    });
    const text = await (await httpGet(`http://127.0.0.1:${ts.server.httpPort}/metrics`)).text();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!] as const));
    for (const name of [
      'flanstream_cache_hits_total',
      'flanstream_cache_misses_total',
      'flanstream_pages_prefetched_total',
      'flanstream_plan_cache_hits_total',
      'flanstream_plan_cache_misses_total',
    ])
      expect(types.get(name), name).toBe('counter');
    // A gauge named like a counter is what promtool rejects; a counter must be named _total.
    for (const [name, type] of types) {
      if (type === 'gauge') expect(name, name).not.toMatch(/_total$/);
      if (type === 'counter') expect(name, name).toMatch(/_total$/);
    }
    // Counters only advance: the index cache served the new stream's pages.
    const after = await scrape(ts.server.httpPort);
    const reads = (m: Map<string, number>): number =>
      sumOf(m, 'flanstream_cache_hits_total') + sumOf(m, 'flanstream_cache_misses_total');
    expect(reads(after)).toBeGreaterThan(reads(before));
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
