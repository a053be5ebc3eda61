/**
 * `npm run bench -- filter [--records=10000] [--rounds=101] [--batches=8] [--cg-rounds=5]`: what a
 * stream filter adds to batch assembly (planning + building, train split, 8 × 4096 packed rows,
 * natural mixture, default held-out set) on a sample index, in one process.
 *
 * Two measures, both made to resolve a few percent on a loaded shared machine:
 * - CPU time: every configuration (no filter, each filter) keeps one stream open; each round
 *   takes `batches` batches from every stream in a rotated order, each after a forced GC, and
 *   reads the process's CPU time (process.cpuUsage), so time given to other processes is not
 *   counted. A round gives one ratio per filter (its CPU per batch over the no-filter stream's in
 *   the same round); the table shows the median over rounds with a 95 % interval of the median.
 * - Instructions: the same rounds (`cg-rounds`) in a child under valgrind's callgrind, counting
 *   only inside each measured run (the run is a vm.Script, so collection toggles on node's
 *   ContextifyScript::RunInContext and dumps after it): a count that does not depend on load.
 *   Skipped when valgrind is missing.
 * A selective filter changes what a batch holds, so the tables show examples per batch and the
 * ratio per example too. V8 runs single-threaded (no background GC or compiler threads whose work
 * would land in another run's CPU time). The filter's one-time cost, classifying every record from the columns
 * section (once per filter text and server), is shown per record.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RecordFilter } from '../../src/filter/record-filter.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import { trainSpec } from '../helpers/core-streams.js';
import { arg, benchIndex, fmt, ROOT, stats } from './bench-util.js';
import { openCore } from './stream/open-core.js';

// V8's background threads (concurrent GC, compilers) would spend CPU inside one measured run for
// work of another: the bench runs with them off (re-executing itself once with the flag).
const FLAGS = ['--single-threaded', '--expose-gc'];
if (!process.execArgv.includes(FLAGS[0]!) && process.env.FILTER_BENCH_CALLGRIND !== '1') {
  const me = [...FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  process.exit(spawnSync(process.execPath, me, { stdio: 'inherit' }).status ?? 1);
}
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CHILD = process.env.FILTER_BENCH_CALLGRIND === '1';
const records = arg('records', 10_000);
const rounds = CHILD ? arg('cg-rounds', 5) : arg('rounds', 101);
const perRound = arg('batches', 8);
const index = benchIndex(records);
const core = await openCore(index);
const reader = core.catalog.reader;

const sources = [...new Set(reader.manifest.shards.flatMap((s) => s.sources.flat()))].sort();
const tasks = reader.tasks.map((t) => JSON.stringify(t.path));
const FILTERS: readonly (readonly [name: string, text: string])[] = [
  ['cheap (keeps all)', 'domain != "space"'],
  ['example', 'ug == "generation" and audio_seconds <= 30 and source != "synthetic"'],
  [`wide in (${tasks.length - 8} tasks)`, `task in [${tasks.slice(8).join(', ')}]`],
  [
    `wide in (${sources.length - 1} sources)`,
    `source in [${sources
      .slice(1)
      .map((s) => JSON.stringify(s))
      .join(', ')}]`,
  ],
];

interface Config {
  readonly name: string;
  readonly text: string;
  readonly session: StreamSession;
  /** Per round: CPU µs (or instructions) per batch, and examples per batch. */
  readonly cost: number[];
  readonly examples: number[];
}

/**
 * CPU µs of the process (getrusage: exact for the running thread; /proc/thread-self/schedstat is
 * not, it moves only at scheduler ticks). V8 runs single-threaded, so this is the main thread's.
 */
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Takes `n` batches of a stream; returns the examples they hold. */
function take(session: StreamSession, n: number): number {
  let examples = 0;
  for (let i = 0; i < n; i++) {
    const m = session.next();
    if (!m || !('batch' in m)) throw new Error('the stream ended');
    examples += m.batch.turnTask.length;
  }
  return examples;
}

/**
 * Under callgrind each configuration's runs enter JS from a native function of their own, so the
 * inclusive instruction count of that function (callgrind_annotate) is exactly what its runs
 * cost, whatever else the process does: warm-ups call directly and are not counted. None of them
 * runs microtasks (vm's RunInContext does, which charged queued work to one stream).
 */
let job: () => void = () => undefined;
const ENTRIES: readonly (readonly [native: string, enter: () => unknown])[] = [
  [
    'v8::internal::KeyAccumulator::CollectOwnJSProxyKeys(',
    () => Object.keys(new Proxy({}, { ownKeys: () => (job(), []) })),
  ],
  ['v8::internal::JsonStringifier::ApplyToJsonFunction(', () => JSON.stringify({ toJSON: () => (job(), 0) })],
  ['v8::internal::JsonStringifier::ApplyReplacerFunction(', () => JSON.stringify(0, (_k, v: unknown) => (job(), v))],
  ['v8::internal::JsonParseInternalizer::Internalize(', () => JSON.parse('0', (_k, v: unknown) => (job(), v))],
  ['v8::internal::Runtime_StringReplaceNonGlobalRegExpWithFunction(', () => 'a'.replace(/a/, () => (job(), ''))],
];

function run(c: Config, k: number, n: number, counted: boolean): { cpu: number; examples: number } {
  let examples = 0;
  job = () => (examples = take(c.session, n));
  gc();
  const t0 = cpuNow();
  if (counted) ENTRIES[k]![1]();
  else job();
  return { cpu: (cpuNow() - t0) / n, examples: examples / n };
}

const configs: Config[] = [['none', ''] as const, ...FILTERS].map(([name, text]) => ({
  name,
  text,
  session: core.open({ spec: trainSpec({ batchSize: 8, seqLen: 4096, ...(text ? { filter: text } : {}) }) }),
  cost: [],
  examples: [],
}));
// Warm-up: JIT, page cache, the filters' masks.
for (let w = 0; w < 3; w++) configs.forEach((c, k) => run(c, k, perRound, false));
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < configs.length; i++) {
    const k = (r + i) % configs.length;
    const m = run(configs[k]!, k, perRound, true);
    configs[k]!.cost.push(m.cpu);
    configs[k]!.examples.push(m.examples);
  }
}
if (CHILD) {
  console.log(JSON.stringify({ examples: configs.map((c) => c.examples) }));
  process.exit(0);
}

/** Median of xs with a 95 % interval for it from order statistics. */
function medianCI(xs: readonly number[]): [number, number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const half = 0.98 * Math.sqrt(n);
  const lo = s[Math.max(0, Math.floor(n / 2 - half))]!;
  const hi = s[Math.min(n - 1, Math.ceil(n / 2 + half) - 1)]!;
  return [stats(s).median, lo, hi];
}

/** CPU ms to classify every record of the index under a filter (a fresh filter, pages resident). */
function classifyCost(text: string): number {
  const f = RecordFilter.parse(reader, text)!;
  gc();
  const t0 = cpuNow();
  for (let i = 0; i < reader.manifest.shards.length; i++) f.keeps(i, 0);
  return (cpuNow() - t0) / 1000;
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} %`;

/** One table row per filter: cost per batch and its ratio to the no-filter stream's, round by round. */
function table(
  cs: readonly Config[],
  unit: string,
  scale: number,
  digits: number,
  extra?: (c: Config) => string,
): void {
  const [base] = cs;
  console.log(
    `| filter | ${unit}/batch | examples/batch | vs no filter, per batch (95 % CI) | per example |${extra ? ' classify, ns/record |' : ''}`,
  );
  console.log(`|---|---|---|---|---|${extra ? '---|' : ''}`);
  for (const c of cs) {
    const cost = fmt(stats(c.cost).median / scale, digits);
    const ex = fmt(stats(c.examples).median, 1);
    if (c === base) {
      console.log(`| none | ${cost} | ${ex} | | |${extra ? ' |' : ''}`);
      continue;
    }
    const [m, lo, hi] = medianCI(c.cost.map((x, r) => x / base!.cost[r]! - 1));
    const perEx = c.cost.map((x, r) => x / c.examples[r]! / (base!.cost[r]! / base!.examples[r]!) - 1);
    const ci = lo === hi ? '' : ` (${pct(lo)} … ${pct(hi)})`;
    console.log(
      `| ${c.name} | ${cost} | ${ex} | ${pct(m)}${ci} | ${pct(stats(perEx).median)} |${extra ? ` ${extra(c)} |` : ''}`,
    );
  }
}

const classify = (c: Config): string => {
  const ms = stats([0, 1, 2].map(() => classifyCost(c.text))).median;
  return fmt((ms * 1e6) / reader.manifest.records, 0);
};
console.log(
  `${reader.manifest.records.toLocaleString('en-US')} records, ${reader.manifest.shards.length} shards; streams of 8 × 4096 packed rows; load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`,
);
console.log(`CPU time, ${rounds} rounds × ${perRound} batches per stream:\n`);
table(configs, 'CPU ms', 1000, 3, classify);

const valgrind = arg('callgrind', 1) !== 0 && spawnSync('valgrind', ['--version']).status === 0;
if (!valgrind)
  console.log(`\n(no instruction counts: ${arg('callgrind', 1) === 0 ? '--callgrind=0' : 'valgrind not found'})`);
else {
  const cgRounds = arg('cg-rounds', 5);
  const dir = mkdtempSync(join(tmpdir(), 'filter-bench-cg-'));
  const me = fileURLToPath(import.meta.url);
  // The child runs as one bundled JS file under plain node (no loader thread). The bundle sits two
  // levels under the root, as this file does, so the paths the code derives from its own location hold.
  const bundle = join(ROOT, '.cache', 'bench', 'filter-bench.mjs');
  const { buildSync } = await import('esbuild');
  buildSync({
    entryPoints: [me],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'error',
  });
  const out = join(dir, 'cg.out');
  const child = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--expose-gc',
      bundle,
      `--records=${records}`,
      `--cg-rounds=${cgRounds}`,
      `--batches=${perRound}`,
    ],
    { env: { ...process.env, FILTER_BENCH_CALLGRIND: '1' }, encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (child.status !== 0) throw new Error(`callgrind child failed: ${child.stderr.slice(-2000)}`);
  const { examples } = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { examples: number[][] };
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', out], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout;
  rmSync(dir, { recursive: true, force: true });
  const inclusive = ENTRIES.map(([native]) => {
    const line = annotated.split('\n').find((l) => l.includes(native));
    if (!line) throw new Error(`callgrind_annotate lists no ${native}`);
    return Number(line.trim().split(' ')[0]!.replace(/,/g, ''));
  });
  const cg: Config[] = configs.map((c, k) => ({
    ...c,
    cost: [inclusive[k]! / (cgRounds * perRound)],
    examples: [stats(examples[k]!).median],
  }));
  console.log(`\nInstructions (callgrind), ${cgRounds} rounds × ${perRound} batches per stream:\n`);
  table(cg, 'M instructions', 1e6, 2);
}
console.log(
  `\nfilters:\n${FILTERS.map(([n, t]) => `- ${n}: \`${t.length > 120 ? `${t.slice(0, 117)}…` : t}\``).join('\n')}`,
);
