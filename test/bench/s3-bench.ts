/**
 * Index on local disk against the same index on S3, in one run (issue 17, item 5). The S3 side is
 * a real S3-protocol server (s3rver) in its own process on 127.0.0.1, so "S3" here means the
 * full SDK path (signing, HTTP, ranged GETs, read-ahead) without a WAN's latency.
 *   - open: IndexReader.open (manifest) and the server's start-up file check, in-process;
 *   - first batch: a fresh server process, request to first batch;
 *   - steady tokens/s: one stream of --batches batches on that fresh server (cold page cache),
 *     then the same stream again on the same server (warm: its pages are cached).
 * Medians of --runs runs (a fresh server per run).
 * Then indexing: the index's corpus built from local disk and from its copy on S3 (records/s,
 * one worker, a fresh output each; --index-runs runs, median).
 *   npx tsx test/bench/s3-bench.ts [--runs 3] [--batches 150] [--records 20000] [--index-runs 1]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch } from '../../clients/ts/wire-types.js';
import { buildIndexTo } from '../../src/index/build-to.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import { S3Process, S3_KEY, S3_SECRET } from '../helpers/s3-server.js';
import { arg, benchIndex, ROOT, stats } from './bench-util.js';

const runs = arg('runs', 3);
const indexRuns = arg('index-runs', 1);
const batches = arg('batches', 150);
const index = benchIndex(arg('records', 20000));
const spec = { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 1 };

const dir = mkdtempSync(join(tmpdir(), 'flanstream-s3-bench-'));
const s3 = await new S3Process(join(dir, 's3'), 'bench').start();
const settings = { endpoint: s3.endpoint, accessKeyId: S3_KEY, secretAccessKey: S3_SECRET };
const sets = [
  '--set',
  `storage.s3.endpoint=${s3.endpoint}`,
  '--set',
  `storage.s3.access_key_id=${S3_KEY}`,
  '--set',
  `storage.s3.secret_access_key=${S3_SECRET}`,
];
await publishDirectory(index, 's3://bench/index', settings, {
  last: [MANIFEST_FILE],
  immutable: () => false,
  skip: (f) => f.endsWith('.tmp') || f.endsWith('.lock'),
});
const LOCATIONS = { 'local disk': index, 's3 (s3rver, loopback)': 's3://bench/index' };

function serve(location: string): Promise<{ child: ChildProcess; target: string }> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'dist', 'cli.js'), 'serve', '--index', location, '--port', '0', '--http-port=-1', ...sets],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve({ child, target: `127.0.0.1:${m[1]}` });
    });
    child.once('exit', (code) => reject(new Error(`serve ${location} exited ${code}: ${out}`)));
  });
}

/** One stream: ms to the first batch, and real tokens/s over all of it. */
function stream(client: FlanStreamClient): Promise<{ firstMs: number; tokensPerSec: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let first = 0;
    let tokens = 0;
    let n = 0;
    const call = client.streamBatches();
    call.on('data', (resp: { batch?: WireBatch | null }) => {
      if (!resp.batch) return;
      if (n++ === 0) first = performance.now() - started;
      tokens += resp.batch.tokens.byteLength / 4;
      if (n === batches) {
        const secs = (performance.now() - started) / 1000;
        call.cancel();
        resolve({ firstMs: first, tokensPerSec: tokens / secs });
      }
    });
    call.on('error', (err: Error) => (n >= batches ? undefined : reject(err)));
    call.write({ spec: { ...spec, maxBatches: batches } } as never);
  });
}

type Row = { open: number[]; first: number[]; cold: number[]; warm: number[] };
const rows: Record<string, Row> = {};
for (const [name, location] of Object.entries(LOCATIONS)) {
  const row: Row = { open: [], first: [], cold: [], warm: [] };
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    const reader = IndexReader.open(location, { s3: settings });
    reader.verifyFiles();
    row.open.push(performance.now() - t);
    reader.close();
    const { child, target } = await serve(location);
    const client = new FlanStreamClient(target);
    const cold = await stream(client);
    const warm = await stream(client);
    row.first.push(cold.firstMs);
    row.cold.push(cold.tokensPerSec);
    row.warm.push(warm.tokensPerSec);
    client.close();
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
  rows[name] = row;
}

// Indexing the same corpus from local disk and from S3 (one worker: the per-record cost of the reads).
const corpus = join(dirname(index), 'corpus');
await publishDirectory(corpus, 's3://bench/corpus', settings, { last: [], immutable: () => false });
const indexing: Record<string, number[]> = { 'local disk': [], 's3 (s3rver, loopback)': [] };
for (let r = 0; r < indexRuns; r++) {
  for (const [name, from] of [
    ['local disk', corpus],
    ['s3 (s3rver, loopback)', 's3://bench/corpus'],
  ] as const) {
    const out = join(dir, `index-${r}-${name.length}`);
    const t = performance.now();
    const s = await buildIndexTo({ corpus: from, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], s3: settings });
    indexing[name]!.push(s.records / ((performance.now() - t) / 1000));
    rmSync(out, { recursive: true, force: true });
  }
}
await s3.stop();
rmSync(dir, { recursive: true, force: true });

const med = (xs: number[]): number => stats(xs).median;
const local = rows['local disk']!;
console.log(
  '| index on | open (manifest + file check) | first batch | steady tokens/s, cold cache | steady tokens/s, warm cache | warm vs local |',
);
console.log('|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(rows)) {
  console.log(
    `| ${name} | ${med(r.open).toFixed(1)} ms | ${med(r.first).toFixed(0)} ms | ${(med(r.cold) / 1e3).toFixed(0)}k | ${(med(r.warm) / 1e3).toFixed(0)}k | ${((100 * med(r.warm)) / med(local.warm)).toFixed(0)} % |`,
  );
}
const m = IndexReader.open(index);
const bytes = m.manifest.shards.reduce((n, s) => n + s.bytes, 0);
console.log(
  `\nmedians of ${runs} runs (a fresh server each); ${batches} batches of ${spec.batchSize} × ${spec.seqLen} (packed) per stream, real tokens; index: ${m.manifest.records} records, ${(bytes / 1e6).toFixed(0)} MB of shards; machine: 2 cores shared, loopback.`,
);
m.close();

console.log('\n| corpus on | index build, records/s (1 worker) | vs local |');
console.log('|---|---|---|');
for (const [name, xs] of Object.entries(indexing))
  console.log(`| ${name} | ${med(xs).toFixed(0)} | ${((100 * med(xs)) / med(indexing['local disk']!)).toFixed(0)} % |`);
console.log(`\nmedian of ${indexRuns} builds each, from scratch, of the index's own corpus.`);
