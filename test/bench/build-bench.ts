/**
 * In-process batch building (no transport): batches/s and tokens/s of a train stream's
 * session.next() plus the wire encoding, 8 × 4096, for every packing mode and audio layout
 * (build/build-cases.ts). With --baseline DIR (a git worktree of an older commit, its
 * node_modules linked), that build is measured in the same run, alternating with this one run
 * by run, each run a fresh child process per build: the "× baseline" column is a same-run ratio.
 *   npx tsx test/bench/build-bench.ts [--runs 5] [--batches 200] [--records 20000] [--baseline DIR]
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { arg, benchIndex, fmtM, ROOT, stats } from './bench-util.js';
import { BUILD_CASES } from './build/build-cases.js';

const runs = arg('runs', 5);
const batches = arg('batches', 200);
const index = benchIndex(arg('records', 20000));
const bi = process.argv.findIndex((a) => a === '--baseline' || a.startsWith('--baseline='));
const baseline = bi < 0 ? undefined : process.argv[bi]!.includes('=') ? process.argv[bi]!.slice('--baseline='.length) : process.argv[bi + 1];
const trees: [string, string][] = [['this build', ROOT], ...(baseline ? [['baseline', baseline] as [string, string]] : [])];

type Result = Record<string, { batches: number; tokens: number; seconds: number }>;
function child(root: string): Result {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/build/build-child.ts'), '--root', root, '--index', index, '--batches', String(batches)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`build-child for ${root} exited ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const loadStart = loadavg()[0]!.toFixed(2);
const tokens = new Map<string, number[]>();
const perBatch = new Map<string, number[]>();
const push = (m: Map<string, number[]>, k: string, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);
for (let r = 0; r < runs; r++) {
  for (const [tree, root] of r % 2 ? [...trees].reverse() : trees) {
    for (const [name, x] of Object.entries(child(root))) {
      push(tokens, `${tree}:${name}`, x.tokens / x.seconds);
      push(perBatch, `${tree}:${name}`, x.batches / x.seconds);
    }
  }
}

const med = (m: Map<string, number[]>, k: string): number => stats(m.get(k) ?? [0]).median;
const cols = baseline ? ' baseline tokens/s | baseline batches/s | × baseline (tokens/s) |' : '';
console.log(`| case | tokens/s median | min | max | batches/s | ÷ packed |${cols}`);
console.log(`|---|---:|---:|---:|---:|---:|${baseline ? '---:|---:|---:|' : ''}`);
for (const name of Object.keys(BUILD_CASES)) {
  const s = stats(tokens.get(`this build:${name}`)!);
  const base = baseline ? ` ${fmtM(med(tokens, `baseline:${name}`))} | ${med(perBatch, `baseline:${name}`).toFixed(0)} | ${(s.median / med(tokens, `baseline:${name}`)).toFixed(2)} |` : '';
  console.log(`| ${name} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${med(perBatch, `this build:${name}`).toFixed(0)} | ${(s.median / med(tokens, 'this build:packed')).toFixed(2)} |${base}`);
}
console.log(`\n${runs} runs × ${batches} batches of 8 × 4096 (train), in process: session.next() + wire encoding; tokens are real (non-pad) tokens. Load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; ${cpus().length} cores.`);
