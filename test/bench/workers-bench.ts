/**
 * `serve --workers N` without clients: S train streams (different seeds, 8 × 4096 packed) open at
 * once, each building --batches batches as fast as it can (build + wire encoding, what the pump
 * asks of a stream), through 1 and through 2 build workers, and on the server thread itself (0),
 * in the same run, cases interleaved run by run. Target: 2 workers ≥ 1.7 × 1 worker on 2 cores.
 *   npx tsx test/bench/workers-bench.ts [--runs 5] [--batches 150] [--streams 4] [--records 20000] [--young 0,64]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { SendBudget } from '../../src/server/send-budget.js';
import { LocalOpener, type ServedStreamOpener } from '../../src/server/served-stream.js';
import * as pool from '../../src/server/worker-pool.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import { arg, benchIndex, stats } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 150);
const streams = arg('streams', 4);
const cores = cpus().length;
const index = benchIndex(arg('records', 20000));
const settings = coreSettings(loadConfig(undefined, { 'index.dir': index }, {}));
const core = await DataServiceCore.open(index, settings);
/** --young 0,64: the pools again with each worker's young generation at most this many MB (0: V8's default); without it, the shipped BUILD_YOUNG_MB. */
const youngArg = process.argv.indexOf('--young');
// Read through the namespace so this bench also runs against an older tree without the export (A/B).
const young =
  youngArg >= 0
    ? process.argv[youngArg + 1]!.split(',').map(Number)
    : [(pool as { BUILD_YOUNG_MB?: number }).BUILD_YOUNG_MB ?? 0];
const { WorkerPool } = pool;
const openers: [string, ServedStreamOpener][] = [['server thread (workers 0)', new LocalOpener(core)]];
for (const mb of young) {
  const label = youngArg >= 0 ? `, young ${mb || 'default'}` : '';
  openers.push([`1 worker${label}`, await WorkerPool.start(core, index, settings, 1, mb)]);
  openers.push([`2 workers${label}`, await WorkerPool.start(core, index, settings, 2, mb)]);
}

/**
 * CPU seconds of each thread of this process (Linux: /proc/self/task/<tid>/stat, utime + stime in
 * clock ticks of 1/100 s). Why: process.cpuUsage() sums every thread, and what limits a pool on an
 * idle machine is its busiest thread (the server thread's cost per batch, or one worker's), which
 * the machine's load does not change.
 */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync('/proc/self/task')) return out; // not Linux: the per-thread columns stay 0
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

interface Measured {
  /** Batches/s. */
  wall: number;
  /** Batches per CPU-second of the process (all threads). */
  perCpu: number;
  /** CPU ms per batch of the main (server) thread. */
  mainMs: number;
  /** CPU ms per batch of the busiest other thread (a build worker, or a GC helper with workers 0). */
  busiestMs: number;
  /** Batches/s this run would reach with `cpus` idle cores: limited by its busiest thread and by its total CPU. */
  idle: number;
}

/** `streams` streams built concurrently through `opener`, each --batches batches (after one to open them). */
async function run(opener: ServedStreamOpener, seed: number): Promise<Measured> {
  // As its call opens a stream (stream-call.ts), with nothing held back by the send budget.
  const call = new AbortController();
  const budget = new SendBudget(Number.MAX_SAFE_INTEGER);
  const open = await Promise.all(
    Array.from({ length: streams }, (_, k) =>
      opener.open(
        { spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: seed * 100 + k } },
        { signal: call.signal, bytes: budget.account() },
      ),
    ),
  );
  await Promise.all(open.map((s) => s.build())); // opened and warm
  const cpu = process.cpuUsage();
  const before = threadCpu();
  const started = performance.now();
  await Promise.all(
    open.map(async (s) => {
      for (let i = 0; i < batches; i++) if (!(await s.build())) throw new Error('a train stream ended');
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const after = threadCpu();
  call.abort();
  const n = streams * batches;
  const spent = (tid: string): number => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  const main = spent(String(process.pid));
  const busiest = Math.max(0, ...[...after.keys()].filter((t) => t !== String(process.pid)).map(spent));
  const total = (used.user + used.system) / 1e6;
  return {
    wall: n / seconds,
    perCpu: n / total,
    mainMs: (main * 1000) / n,
    busiestMs: (busiest * 1000) / n,
    idle: n / Math.max(main, busiest, total / cores),
  };
}

const loadStart = loadavg()[0]!.toFixed(2);
for (const [, o] of openers) await run(o, 99); // JIT and page caches of every worker
const measured = new Map<string, Measured[]>(openers.map(([n]) => [n, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, o] of r % 2 ? [...openers].reverse() : openers) measured.get(name)!.push(await run(o, r));
}
for (const [, o] of openers) if (o instanceof WorkerPool) await o.close();

const median = (name: string, k: keyof Measured): number => stats(measured.get(name)!.map((m) => m[k])).median;
/** 2 workers ÷ the 1 worker of the same young generation; the server thread ÷ the first 1 worker. */
const oneOf = (name: string): string =>
  name.startsWith('2 workers') ? name.replace('2 workers', '1 worker') : openers[1]![0];
console.log(
  `| build | batches/s median | min | max | ÷ 1 worker | batches per CPU-second (all threads) | main-thread CPU ms per batch | busiest other thread CPU ms per batch | idle ${cores}-core estimate, batches/s | ÷ 1 worker |`,
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [name] of openers) {
  const s = stats(measured.get(name)!.map((m) => m.wall));
  const cells = [
    s.median.toFixed(0),
    s.min.toFixed(0),
    s.max.toFixed(0),
    (s.median / median(oneOf(name), 'wall')).toFixed(2),
    median(name, 'perCpu').toFixed(0),
    median(name, 'mainMs').toFixed(3),
    median(name, 'busiestMs').toFixed(3),
    median(name, 'idle').toFixed(0),
    (median(name, 'idle') / median(oneOf(name), 'idle')).toFixed(2),
  ];
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
console.log(
  `\n${runs} runs × ${streams} streams × ${batches} batches of 8 × 4096 (packed), in process, no transport. Load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; ${cores} cores.`,
);
console.log(
  'Idle estimate: batches ÷ max(main thread CPU, busiest other thread CPU, all CPU ÷ cores) of the run — what the run would reach on idle cores (CPU per thread hardly depends on the load; wall-clock does).',
);
