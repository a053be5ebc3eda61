/**
 * `serve --workers N` without clients: S train streams (different seeds, 8 × 4096 packed) open at
 * once, each building --batches batches as fast as it can (build + wire encoding, what the pump
 * asks of a stream), through 1 and through 2 build workers, and on the server thread itself (0),
 * in the same run, cases interleaved run by run. Target: 2 workers ≥ 1.7 × 1 worker on 2 cores.
 *   npx tsx test/bench/workers-bench.ts [--runs 5] [--batches 150] [--streams 4] [--records 20000] [--young 0,64]
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { LocalOpener, type ServedStreamOpener } from '../../src/server/served-stream.js';
import { BUILD_YOUNG_MB, WorkerPool } from '../../src/server/worker-pool.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import { arg, benchIndex, stats } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 150);
const streams = arg('streams', 4);
const index = benchIndex(arg('records', 20000));
const settings = coreSettings(loadConfig(undefined, { 'index.dir': index }, {}));
const core = await DataServiceCore.open(index, settings);
/** --young 0,64: the pools again with each worker's young generation at most this many MB (0: V8's default); without it, the shipped BUILD_YOUNG_MB. */
const youngArg = process.argv.indexOf('--young');
const young = youngArg >= 0 ? process.argv[youngArg + 1]!.split(',').map(Number) : [BUILD_YOUNG_MB];
const openers: [string, ServedStreamOpener][] = [['server thread (workers 0)', new LocalOpener(core)]];
for (const mb of young) {
  const label = youngArg >= 0 ? `, young ${mb || 'default'}` : '';
  openers.push([`1 worker${label}`, await WorkerPool.start(core, index, settings, 1, mb)]);
  openers.push([`2 workers${label}`, await WorkerPool.start(core, index, settings, 2, mb)]);
}

/**
 * CPU seconds of this process's main thread (Linux: /proc/self/task/<pid>/stat, utime + stime in
 * clock ticks of 1/100 s). Why: process.cpuUsage() sums every thread, and what limits workers is
 * the server thread's cost per batch, which the machine's load does not change.
 */
function mainThreadCpu(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Batches/s of `streams` streams built concurrently through `opener`, batches per CPU-second of the process (all threads), and CPU ms per batch of the main thread. */
async function run(opener: ServedStreamOpener, seed: number): Promise<[number, number, number]> {
  const open = Array.from({ length: streams }, (_, k) => opener.open({ spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: seed * 100 + k } }));
  await Promise.all(open.map((s) => s.build())); // opened and warm
  const cpu = process.cpuUsage();
  const main = mainThreadCpu();
  const started = performance.now();
  await Promise.all(open.map(async (s) => {
    for (let i = 0; i < batches; i++) if (!(await s.build())) throw new Error('a train stream ended');
  }));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const mainMs = ((mainThreadCpu() - main) * 1000) / (streams * batches);
  for (const s of open) s.close();
  return [(streams * batches) / seconds, (streams * batches) / ((used.user + used.system) / 1e6), mainMs];
}

const loadStart = loadavg()[0]!.toFixed(2);
for (const [, o] of openers) await run(o, 99); // JIT and page caches of every worker
const results = new Map<string, number[]>(openers.map(([n]) => [n, []]));
const perCpu = new Map<string, number[]>(openers.map(([n]) => [n, []]));
const mainMs = new Map<string, number[]>(openers.map(([n]) => [n, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, o] of r % 2 ? [...openers].reverse() : openers) {
    const [wall, cpu, ms] = await run(o, r);
    results.get(name)!.push(wall);
    perCpu.get(name)!.push(cpu);
    mainMs.get(name)!.push(ms);
  }
}
for (const [, o] of openers) if (o instanceof WorkerPool) await o.close();

/** 2 workers ÷ the 1 worker of the same young generation; the server thread ÷ the first 1 worker. */
const oneOf = (name: string): number => stats(results.get(name.startsWith('2 workers') ? name.replace('2 workers', '1 worker') : openers[1]![0])!).median;
console.log('| build | batches/s median | min | max | ÷ 1 worker | batches per CPU-second (all threads) | main-thread CPU ms per batch |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name] of openers) {
  const s = stats(results.get(name)!);
  console.log(`| ${name} | ${s.median.toFixed(0)} | ${s.min.toFixed(0)} | ${s.max.toFixed(0)} | ${(s.median / oneOf(name)).toFixed(2)} | ${stats(perCpu.get(name)!).median.toFixed(0)} | ${stats(mainMs.get(name)!).median.toFixed(3)} |`);
}
console.log(`\n${runs} runs × ${streams} streams × ${batches} batches of 8 × 4096 (packed), in process, no transport. Load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; ${cpus().length} cores.`);
