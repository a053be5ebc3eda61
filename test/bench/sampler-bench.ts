/**
 * Mixing throughput: examples/s of Sampler.next() + TaskWalker.next() (the per-example work of
 * the train planner before packing), with the 80 Audio-FLAN tasks at paper scale and with 10,000
 * synthetic tasks (sizes log-uniform in [10, 10⁷]), natural proportions. Medians of --runs runs.
 *   npx tsx test/bench/sampler-bench.ts [--runs 5] [--draws 1000000]
 */
import { AUDIO_FLAN_TASKS } from '../../src/sample/task-catalog.js';
import { Sampler } from '../../src/mix/sampler.js';
import { TaskWalker } from '../../src/mix/task-walker.js';
import { arg, stats } from './bench-util.js';

const runs = arg('runs', 5);
const fmtK = (x: number): string => `${(x / 1e3).toFixed(1)}k`;
const draws = arg('draws', 1_000_000);

function synthetic(n: number): number[] {
  let s = 12345;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, () => Math.round(10 ** (1 + 6 * rnd())));
}

/** Examples/s over `n` draws; also the worst |count − n·target| seen at the end (a sanity check). */
function run(sizes: readonly number[], n: number, seed: number): { rate: number; worst: number } {
  const total = sizes.reduce((a, b) => a + b, 0);
  const target = Float64Array.from(sizes, (x) => x / total);
  const sampler = new Sampler(target);
  const walker = new TaskWalker(sizes, seed);
  const counts = new Float64Array(sizes.length);
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = sampler.next();
    sink += walker.next(t);
    counts[t]!++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (sink < 0) throw new Error('unreachable');
  const worst = Math.max(...Array.from(counts, (c, t) => Math.abs(c - n * target[t]!)));
  return { rate: n / seconds, worst };
}

const cases: [string, number[], number][] = [
  ['80 tasks (Audio-FLAN paper sizes, 108.5M records)', AUDIO_FLAN_TASKS.map((t) => t.instances), draws],
  ['10,000 tasks (sizes 10 – 10⁷)', synthetic(10_000), Math.max(1, Math.floor(draws / 20))],
];

console.log('| tasks | draws per run | examples/s median | min | max | µs per example | max \\|count − n·p\\| |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, sizes, n] of cases) {
  run(sizes, Math.min(n, 20_000), 0); // warm-up (JIT)
  const results = Array.from({ length: runs }, (_, r) => run(sizes, n, r + 1));
  const s = stats(results.map((x) => x.rate));
  const worst = Math.max(...results.map((x) => x.worst));
  console.log(
    `| ${name} | ${n.toLocaleString('en')} | ${fmtK(s.median)} | ${fmtK(s.min)} | ${fmtK(s.max)} | ${(1e6 / s.median).toFixed(2)} | ${worst.toFixed(2)} |`,
  );
}
console.log(
  `\n${runs} runs; Sampler.next() scans only the blocks of ~√tasks (tasks of similar targets) whose score bound can win (Megatron's argmax rule, the same picks as scanning every task), TaskWalker.next() O(1) (Feistel permutation with cycle walking).`,
);
