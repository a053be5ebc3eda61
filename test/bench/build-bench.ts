/**
 * In-process batch building (no transport): batches/s and tokens/s of a train stream's
 * session.next() plus the wire encoding, 8 × 4096, for every packing mode and audio layout
 * (build/build-cases.ts). With --baseline DIR (a git worktree of an older commit, its
 * node_modules linked), that build is measured in the same run, alternating with this one run
 * by run, each run a fresh child process per build: the "× baseline" column is a same-run ratio.
 * An older build may need an older index format: --baseline-index DIR gives it an index of the same
 * sample corpus built by that build (the tokens per batch then match; compare batches and CPU).
 * With --plan only the planning is timed (sampler, walker, locating, fitting and packing each
 * step's rows; no tokens, no encoding), reported as CPU µs per planned example.
 *   npx tsx test/bench/build-bench.ts [--runs 5] [--batches 200] [--records 20000] [--baseline DIR] [--baseline-index DIR] [--plan]
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { arg, benchIndex, fmtM, ROOT, stats } from './bench-util.js';
import { BUILD_CASES } from './build/build-cases.js';

const runs = arg('runs', 5);
const batches = arg('batches', 200);
const index = benchIndex(arg('records', 20000));
/** A string flag as `--name value` or `--name=value`. */
function text(name: string): string | undefined {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return process.argv[i]!.includes('=') ? process.argv[i]!.slice(name.length + 3) : process.argv[i + 1];
}
const baseline = text('baseline');
const planOnly = process.argv.includes('--plan');
const trees: [string, string, string][] = [
  ['this build', ROOT, index],
  ...(baseline ? [['baseline', baseline, text('baseline-index') ?? index] as [string, string, string]] : []),
];

type Result = Record<
  string,
  { batches: number; tokens: number; seconds: number; cpuSeconds: number; examples?: number }
>;
function child(root: string, dir: string): Result {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'test/bench/build/build-child.ts'),
      '--root',
      root,
      '--index',
      dir,
      '--batches',
      String(batches),
      ...(planOnly ? ['--plan'] : []),
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (r.status !== 0) throw new Error(`build-child for ${root} exited ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const loadStart = loadavg()[0]!.toFixed(2);
const tokens = new Map<string, number[]>();
const perBatch = new Map<string, number[]>();
const perCpu = new Map<string, number[]>();
const usPerExample = new Map<string, number[]>();
const push = (m: Map<string, number[]>, k: string, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);
for (let r = 0; r < runs; r++) {
  for (const [tree, root, dir] of r % 2 ? [...trees].reverse() : trees) {
    for (const [name, x] of Object.entries(child(root, dir))) {
      push(tokens, `${tree}:${name}`, x.tokens / x.seconds);
      push(perBatch, `${tree}:${name}`, x.batches / x.seconds);
      push(perCpu, `${tree}:${name}`, x.batches / x.cpuSeconds);
      if (x.examples) push(usPerExample, `${tree}:${name}`, (x.cpuSeconds * 1e6) / x.examples);
    }
  }
}

const med = (m: Map<string, number[]>, k: string): number => stats(m.get(k) ?? [0]).median;
if (planOnly) {
  const cols = baseline ? ' baseline µs/example | baseline ÷ this |' : '';
  console.log(`| case | planning: CPU µs per example, median | min | max | steps planned per CPU-s |${cols}`);
  console.log(`|---|---:|---:|---:|---:|${baseline ? '---:|---:|' : ''}`);
  for (const name of Object.keys(BUILD_CASES)) {
    const s = stats(usPerExample.get(`this build:${name}`)!);
    const b = med(usPerExample, `baseline:${name}`);
    const base = baseline ? ` ${b.toFixed(3)} | ${(b / s.median).toFixed(2)} |` : '';
    console.log(
      `| ${name} | ${s.median.toFixed(3)} | ${s.min.toFixed(3)} | ${s.max.toFixed(3)} | ${med(perCpu, `this build:${name}`).toFixed(0)} |${base}`,
    );
  }
  console.log(
    `\n${runs} runs × ${batches} steps of 8 rows × 4096 (train), planning only (TrainPlanner.beginStep + planRows: sampler, walker, locate, fit, pack; no tokens, no encoding), CPU of the child. Load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; ${cpus().length} cores.`,
  );
  process.exit(0);
}
const cols = baseline
  ? ' baseline tokens/s | baseline batches/s | baseline batches/CPU-s | × baseline (batches/s) | × baseline (batches/CPU-s) |'
  : '';
console.log(`| case | tokens/s median | min | max | batches/s | batches/CPU-s | ÷ packed (tokens/s) |${cols}`);
console.log(`|---|---:|---:|---:|---:|---:|---:|${baseline ? '---:|---:|---:|---:|---:|' : ''}`);
for (const name of Object.keys(BUILD_CASES)) {
  const s = stats(tokens.get(`this build:${name}`)!);
  const [b, c] = [med(perBatch, `this build:${name}`), med(perCpu, `this build:${name}`)];
  const [bb, bc] = [med(perBatch, `baseline:${name}`), med(perCpu, `baseline:${name}`)];
  const base = baseline
    ? ` ${fmtM(med(tokens, `baseline:${name}`))} | ${bb.toFixed(0)} | ${bc.toFixed(0)} | ${(b / bb).toFixed(2)} | ${(c / bc).toFixed(2)} |`
    : '';
  console.log(
    `| ${name} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${b.toFixed(0)} | ${c.toFixed(0)} | ${(s.median / med(tokens, 'this build:packed')).toFixed(2)} |${base}`,
  );
}
console.log(
  `\n${runs} runs × ${batches} batches of 8 × 4096 (train), in process: session.next() + wire encoding; tokens are real (non-pad) tokens; batches/CPU-s = batches per CPU second of the child (steadier than wall time when the machine is shared). Load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; ${cpus().length} cores.`,
);
