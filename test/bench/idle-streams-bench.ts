/**
 * Server RSS with 0 versus N idle streams (issue 12.3): clients that open a stream and never
 * read a byte (raw HTTP/2, paused: flow control stops the server). Before per-stream caps and the
 * send budget, grpc-js queued 16 built batches per such stream: 50 idle streams took 3.4 GB and
 * 256 took 11.7 GB. Target: < 300 MB more with 256. Also times a /metrics scrape under that load.
 *
 *   npx tsx test/bench/idle-streams-bench.ts [--streams 256] [--runs 3] [--batch 8] [--seq 4096]
 */
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { IdleClients } from '../helpers/idle-client.js';
import { scrape, sumOf } from '../ops/helpers/grpc.js';
import { rssOf, sleep, spawnServer } from '../reliability/procs.js';
import { arg, benchIndex, stats } from './bench-util.js';

const streams = arg('streams', 256);
const runs = arg('runs', 3);
const batchSize = arg('batch', 8);
const seqLen = arg('seq', 4096);
/** Streams per HTTP/2 connection, as several trainer processes would open them. */
const PER_CONNECTION = 64;
const MB = 1 << 20;

async function settled(httpPort: number): Promise<Map<string, number>> {
  let last = -1;
  for (;;) {
    await sleep(500);
    const m = await scrape(httpPort);
    const n = sumOf(m, 'flanstream_batches_total');
    if (n === last) return m;
    last = n;
  }
}

interface Run {
  base: number;
  idle: number;
  built: number;
  unsent: number;
  scrapeMs: number;
}

async function once(index: string): Promise<Run> {
  const server = await spawnServer(index, { 'server.max_streams': String(Math.max(256, streams + 1)) });
  const clients: IdleClients[] = [];
  try {
    // Warm up: one stream read to its end, so caches and code paths are loaded before the baseline.
    const warm = new FlanStreamClient(server.target);
    await new Promise<void>((resolve, reject) => {
      const call = warm.streamBatches();
      call.on('data', () => undefined);
      call.on('end', resolve);
      call.on('error', reject);
      call.write({ spec: { split: 'train', batchSize, seqLen, packing: 'packed', seed: 0, maxBatches: 20 } });
    });
    warm.close();
    await settled(server.httpPort);
    const base = rssOf(server.child.pid!);
    for (let i = 0; i < streams; i++) {
      if (i % PER_CONNECTION === 0) clients.push(new IdleClients(server.target));
      clients[clients.length - 1]!.open({
        spec: { split: 'train', batchSize, seqLen, packing: 'packed', seed: i + 1 },
      });
    }
    const m = await settled(server.httpPort);
    const t0 = performance.now();
    await scrape(server.httpPort);
    const scrapeMs = performance.now() - t0;
    return {
      base,
      idle: rssOf(server.child.pid!),
      built: sumOf(m, 'flanstream_batches_total'),
      unsent: sumOf(m, 'flanstream_unsent_bytes'),
      scrapeMs,
    };
  } finally {
    for (const c of clients) c.close();
    await server.kill();
  }
}

const index = benchIndex(3000);
const results: Run[] = [];
for (let r = 0; r < runs; r++) results.push(await once(index));
const row = (name: string, xs: number[], fmt: (x: number) => string): string => {
  const s = stats(xs);
  return `| ${name} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} |`;
};
const mb = (x: number): string => `${(x / MB).toFixed(0)} MB`;
console.log(`${streams} idle streams (batch ${batchSize} x ${seqLen}, packed), ${runs} runs, fresh server per run\n`);
console.log('| measure | median | min | max |\n|---|---|---|---|');
console.log(
  row(
    'RSS, 0 idle streams',
    results.map((x) => x.base),
    mb,
  ),
);
console.log(
  row(
    `RSS, ${streams} idle streams`,
    results.map((x) => x.idle),
    mb,
  ),
);
console.log(
  row(
    'RSS added',
    results.map((x) => x.idle - x.base),
    mb,
  ),
);
console.log(
  row(
    'batches built per idle stream',
    results.map((x) => x.built / streams),
    (x) => x.toFixed(2),
  ),
);
console.log(
  row(
    'built-but-unsent bytes (flanstream_unsent_bytes)',
    results.map((x) => x.unsent),
    mb,
  ),
);
console.log(
  row(
    '/metrics scrape under load',
    results.map((x) => x.scrapeMs),
    (x) => `${x.toFixed(0)} ms`,
  ),
);
