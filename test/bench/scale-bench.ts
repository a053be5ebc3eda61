/**
 * Serving at corpus scale: tokens/s of one consumer, index pages read per batch, the server's worst
 * event-loop delay and its RSS, for synthetic indexes of 10^5, 10^6 and 10^7 records
 * (test/bench/synthetic-index.ts) with a page cache of 10 % of the index (--cache-fraction), served
 * from a local directory and from S3 with every GET delayed (--delay-ms, 20 ms by default: s3rver
 * behind a proxy that waits before forwarding each GET, test/helpers/s3-proxy.ts).
 *
 * Each measurement is a fresh server process (test/reliability/child-server.ts: the real gRPC
 * server on a real port, cold page cache) read by the TypeScript client over gRPC, one stream of
 * 8 × 4096 packed batches: --warmup batches, then --batches measured. Sizes, storages and shuffles
 * are interleaved within each of --runs rounds, so every figure of a row is measured side by side;
 * the table gives medians over the rounds.
 *   - tokens/s: real tokens (segment lengths) of the measured batches over their wall time;
 *   - pages/batch: index pages read per measured batch, synchronously (planning: record tables)
 *     and ahead of the build (asynchronously: tokens, spans, strings), from /metrics;
 *   - worst event-loop delay: perf_hooks.monitorEventLoopDelay in the server, over its whole life
 *     after it started listening (the cold start included);
 *   - RSS: the server's peak resident set while streaming, sampled every 100 ms.
 *
 *   npm run bench -- scale [--records=1e5,1e6,1e7] [--storage=local,s3] [--shuffle=global,blocks]
 *     [--runs=3] [--batches=100] [--warmup=10] [--delay-ms=20] [--cache-fraction=0.1]
 *     [--dir=/tmp/flanstream-scale] [--clean] [--profile=DIR]
 * Indexes (and their S3 copies, under <dir>/s3) are kept in --dir and reused while their format
 * is current; --clean removes them at the end; --runs=0 only makes them (and uploads them).
 * --profile=DIR writes a CPU profile of every server (cpu-profile.mjs) into DIR, named by its pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch } from '../../clients/ts/wire-types.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { indexIsCurrent } from '../../src/index/manifest-io.js';
import { publishDirectory } from '../../src/storage/s3-upload.js';
import { S3Process, S3_KEY, S3_SECRET } from '../helpers/s3-server.js';
import { S3Proxy } from '../helpers/s3-proxy.js';
import { spawnServer, type ChildServer } from '../reliability/procs.js';
import { arg, ROOT, stats } from './bench-util.js';

const list = (name: string, fallback: string): string[] => {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  return (eq ? eq.slice(name.length + 3) : i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback)
    .split(',')
    .filter(Boolean);
};
const sizes = list('records', '1e5,1e6,1e7').map(Number);
const storages = list('storage', 'local,s3') as ('local' | 's3')[];
const shuffles = list('shuffle', 'global');
const runs = arg('runs', 3);
const batches = arg('batches', 100);
const warmup = arg('warmup', 10);
const delayMs = arg('delay-ms', 20);
const fraction = arg('cache-fraction', 0.1);
const base = list('dir', '/tmp/flanstream-scale')[0]!;
const clean = process.argv.includes('--clean');
const profileDir = list('profile', '')[0];
/** The server's defaults for index.prefetch_bytes and server.send_budget_bytes (src/config/schema.ts). */
const PREFETCH_BYTES = 64 << 20;
const SEND_BUDGET_BYTES = 256 << 20;
const spec = { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 1 };

for (const s of storages) if (s !== 'local' && s !== 's3') throw new Error(`--storage takes local and s3, got ${s}`);
for (const n of sizes)
  if (!(Number.isInteger(n) && n >= 1000))
    throw new Error(`--records takes record counts ≥ 1000 (1e5 or 100000), got ${n}`);

/** Bytes of every file of a directory tree. */
function treeBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = statSync(join(dir, f));
    if (st.isFile()) n += st.size;
  }
  return n;
}

const indexes = new Map<number, { dir: string; bytes: number }>();
for (const n of sizes) {
  const dir = join(base, String(n));
  if (!indexIsCurrent(dir)) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/bench/synthetic-index.ts'), dir, '--records', String(n)],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (r.status !== 0) throw new Error(`synthetic index of ${n} records failed`);
  }
  indexes.set(n, { dir, bytes: treeBytes(dir) });
}

let s3: S3Process | undefined;
let proxy: S3Proxy | undefined;
const s3Sets: Record<string, string> = {};
if (storages.includes('s3')) {
  s3 = await new S3Process(join(base, 's3'), 'scale').start();
  proxy = await new S3Proxy(s3.endpoint).start();
  const settings = { endpoint: s3.endpoint, accessKeyId: S3_KEY, secretAccessKey: S3_SECRET };
  // Shard files are named by their content: a rerun uploads only what changed.
  for (const n of sizes)
    await publishDirectory(indexes.get(n)!.dir, `s3://scale/i${n}`, settings, {
      last: [MANIFEST_FILE],
      immutable: (f) => f.startsWith('shards/'),
      skip: (f) => f.endsWith('.tmp') || f.endsWith('.lock'),
    });
  await proxy.set({ delayMs });
  Object.assign(s3Sets, {
    'storage.s3.endpoint': proxy.endpoint,
    'storage.s3.access_key_id': S3_KEY,
    'storage.s3.secret_access_key': S3_SECRET,
  });
}

/** A Prometheus gauge of the server. */
async function gauge(server: ChildServer, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  if (!m) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

function rssPeak(pid: number): () => number {
  let peak = 0;
  const sample = (): void => {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // The process is gone.
    }
  };
  const timer = setInterval(sample, 100);
  return () => {
    sample();
    clearInterval(timer);
    return peak;
  };
}

interface Sample {
  tokensPerSec: number;
  syncPages: number;
  aheadPages: number;
  lagMs: number;
  /** The worst event-loop delay of an idle Node process over the same interval: the machine's own share. */
  idleLagMs: number;
  /** The slowest /healthz answer while the measured batches streamed, ms (Infinity: one failed). */
  healthMs: number;
  /** RSS once listening, before the stream opened, and the peak while streaming. */
  rssIdle: number;
  rss: number;
}

/**
 * An idle Node process beside the server: its worst event-loop delay is what the machine's load
 * alone costs a thread, so a server delay far above it is the server's own.
 */
function idleControl(): { stop: () => Promise<number> } {
  const code = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable();
setInterval(() => {}, 1000); process.on('SIGTERM', () => { process.stdout.write(String(h.max / 1e6)); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', () => r(Number(out))));
  return {
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Polls the server's /healthz back to back (every 50 ms at most) until stopped: the slowest answer
 * in ms, Infinity if one was not 200 or took over 10 s.
 */
function healthProbe(server: ChildServer): () => Promise<number> {
  let worst = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const t = performance.now();
      try {
        const r = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`, { signal: AbortSignal.timeout(10_000) });
        await r.text();
        worst = Math.max(worst, r.status === 200 ? performance.now() - t : Infinity);
      } catch {
        worst = Infinity;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stop = true;
    await loop;
    return worst;
  };
}

/** One fresh server and one stream: warmup batches, then the measured ones. */
async function measure(location: string, cacheBytes: number, shuffle: string): Promise<Sample> {
  const nodeOptions = process.env.NODE_OPTIONS;
  if (profileDir) {
    process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --import ${join(ROOT, 'test/bench/cpu-profile.mjs')}`;
    process.env.FLANSTREAM_CPU_PROFILE_DIR = profileDir;
  }
  const server = await spawnServer(location, {
    'index.cache_bytes': String(cacheBytes),
    ...(location.startsWith('s3://') ? s3Sets : {}),
  }).finally(() => {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
    delete process.env.FLANSTREAM_CPU_PROFILE_DIR;
  });
  if (profileDir)
    console.error(`server of ${location} (${shuffle}): pid ${server.child.pid}, profile in ${profileDir}`);
  const control = idleControl();
  const rssIdle = rssPeak(server.child.pid!)();
  const peak = rssPeak(server.child.pid!);
  let health: (() => Promise<number>) | undefined;
  const client = new FlanStreamClient(server.target);
  try {
    let at0 = { t: 0, sync: 0, ahead: 0 };
    let tokens = 0;
    let n = 0;
    const done = await new Promise<{ t: number }>((resolve, reject) => {
      const call = client.streamBatches();
      call.on('data', (resp: { batch?: WireBatch | null }) => {
        if (!resp.batch) return;
        n++;
        if (n === warmup) {
          call.pause();
          void Promise.all([
            gauge(server, 'flanstream_cache_misses_total'),
            gauge(server, 'flanstream_pages_prefetched_total'),
          ]).then(([sync, ahead]) => {
            at0 = { t: performance.now(), sync, ahead };
            health = healthProbe(server);
            call.resume();
          }, reject);
          return;
        }
        if (n > warmup) tokens += resp.batch.segLength.reduce((a, b) => a + b, 0);
        if (n === warmup + batches) {
          resolve({ t: performance.now() });
          call.cancel();
        }
      });
      call.on('error', (err: Error) => (n >= warmup + batches ? undefined : reject(err)));
      call.write({ spec: { ...spec, shuffle, maxBatches: warmup + batches } } as never);
    });
    const healthMs = (await health?.()) ?? Infinity;
    const idleLagMs = await control.stop();
    const [sync, ahead] = await Promise.all([
      gauge(server, 'flanstream_cache_misses_total'),
      gauge(server, 'flanstream_pages_prefetched_total'),
    ]);
    return {
      idleLagMs,
      healthMs,
      rssIdle,
      tokensPerSec: tokens / ((done.t - at0.t) / 1000),
      syncPages: (sync - at0.sync) / batches,
      aheadPages: (ahead - at0.ahead) / batches,
      lagMs: server.maxLagMs(),
      rss: peak(),
    };
  } finally {
    client.close();
    await health?.();
    await control.stop();
    if (profileDir && server.child.exitCode === null) {
      // A normal exit writes the CPU profile (child-server.ts exits on SIGTERM).
      const exited = new Promise((r) => server.child.once('exit', r));
      server.child.kill('SIGTERM');
      await exited;
    }
    await server.kill();
  }
}

const key = (n: number, storage: string, shuffle: string): string => `${n}/${storage}/${shuffle}`;
const samples = new Map<string, Sample[]>();
for (let r = 0; r < runs; r++) {
  for (const n of sizes) {
    const { dir, bytes } = indexes.get(n)!;
    for (const shuffle of shuffles) {
      for (const storage of storages) {
        const location = storage === 'local' ? dir : `s3://scale/i${n}`;
        const s = await measure(location, Math.floor(bytes * fraction), shuffle);
        const k = key(n, storage, shuffle);
        samples.set(k, [...(samples.get(k) ?? []), s]);
        console.error(
          `round ${r + 1}/${runs} ${k}: ${(s.tokensPerSec / 1e6).toFixed(2)}M tokens/s, ${(s.syncPages + s.aheadPages).toFixed(0)} pages/batch, lag ${s.lagMs.toFixed(0)} ms (idle ${s.idleLagMs.toFixed(0)}), /healthz ${s.healthMs.toFixed(0)} ms, RSS ${(s.rssIdle / 2 ** 20).toFixed(0)} → ${(s.rss / 2 ** 20).toFixed(0)} MB (load ${loadavg()[0]!.toFixed(1)})`,
        );
      }
    }
  }
}

await proxy?.stop();
await s3?.stop();
if (clean) {
  for (const { dir } of indexes.values()) rmSync(dir, { recursive: true, force: true });
  if (existsSync(join(base, 's3'))) rmSync(join(base, 's3'), { recursive: true, force: true });
}
if (runs === 0) {
  console.log(`indexes ready in ${base}: ${sizes.join(', ')} records${s3 ? ', with their S3 copies' : ''}`);
  process.exit(0);
}

const med = (xs: number[]): number => stats(xs).median;
const range = (xs: number[], f: (x: number) => string): string => {
  const s = stats(xs);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
};
const M = (x: number): string => (x / 1e6).toFixed(2);
const smallest = Math.min(...sizes);
console.log(
  '| records | index | cache | storage | shuffle | tokens/s (M) | vs 10^5 same storage | vs local | pages/batch sync + ahead | worst event-loop delay ms (idle process) | slowest /healthz ms | RSS idle → peak MB | bound MB |',
);
console.log('|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const n of sizes) {
  const { bytes } = indexes.get(n)!;
  for (const shuffle of shuffles) {
    for (const storage of storages) {
      const xs = samples.get(key(n, storage, shuffle))!;
      const tps = med(xs.map((x) => x.tokensPerSec));
      const vsSmall = tps / med(samples.get(key(smallest, storage, shuffle))!.map((x) => x.tokensPerSec));
      const local = samples.get(key(n, 'local', shuffle));
      const vsLocal = local ? `${((100 * tps) / med(local.map((x) => x.tokensPerSec))).toFixed(0)} %` : '–';
      const sync = med(xs.map((x) => x.syncPages));
      const ahead = med(xs.map((x) => x.aheadPages));
      console.log(
        `| ${n.toExponential(0)} | ${(bytes / 2 ** 20).toFixed(0)} MB | ${((bytes * fraction) / 2 ** 20).toFixed(1)} MB | ${storage === 's3' ? `s3 +${delayMs} ms/GET` : 'local'} | ${shuffle} | ${range(
          xs.map((x) => x.tokensPerSec),
          M,
        )} | ${(100 * vsSmall).toFixed(0)} % | ${vsLocal} | ${sync.toFixed(0)} + ${ahead.toFixed(0)} | ${range(
          xs.map((x) => x.lagMs),
          (x) => x.toFixed(0),
        )} (${med(xs.map((x) => x.idleLagMs)).toFixed(0)}) | ${range(
          xs.map((x) => x.healthMs),
          (x) => x.toFixed(0),
        )} | ${med(xs.map((x) => x.rssIdle / 2 ** 20)).toFixed(0)} → ${range(
          xs.map((x) => x.rss / 2 ** 20),
          (x) => x.toFixed(0),
        )} | ${((med(xs.map((x) => x.rssIdle)) + bytes * fraction + PREFETCH_BYTES + SEND_BUDGET_BYTES) / 2 ** 20).toFixed(0)} |`,
      );
    }
  }
}
console.log(
  `\nMedians (min–max) of ${runs} rounds, a fresh server per measurement, sizes × shuffles × storages interleaved in each round. One TypeScript gRPC consumer, ${spec.batchSize} × ${spec.seqLen} packed, ${warmup} warm-up batches then ${batches} measured; index.cache_bytes = ${fraction * 100} % of the index; default index.read_concurrency and index.prefetch_bytes.`,
);
