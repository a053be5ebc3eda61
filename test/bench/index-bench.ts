/**
 * Indexing throughput: `npx tsx test/bench/index-bench.ts [--records 100000] [--runs 5] [--corpus DIR]
 * [--parts 1,2] [--workers 1] [--baseline SRC_TREE]`.
 *
 * Writes a release-shaped sample corpus once (or uses --corpus), then indexes it from scratch in
 * every configuration, `runs` times each, the configurations alternating run by run so that load
 * from other work on the machine falls on all of them alike:
 * - `one process`: `buildIndex` with `--workers` worker threads (the tokenizer's own threads included);
 * - `N parts`: N processes started together, each `buildPart` I/N with one worker, then the merge
 *   (timed on its own: it runs once, after the slowest part).
 * Every build is a fresh child process, so no run profits from another's warm caches or loaded
 * tokenizer. Reported per configuration (medians): wall records/s, records per CPU-second (user +
 * system of every process of the build: records/s per core, which load on a shared machine
 * disturbs far less than wall time), and merge seconds.
 *
 * `--baseline DIR` names the source tree of another commit (e.g. `git archive <commit> | tar -x -C
 * DIR` with a node_modules link): its builds run in the same loop through its own src/, so a
 * before/after table comes from one run. Within each tree every configuration must write the same
 * index (same fingerprint); the bench checks that.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, stats } from './bench-util.js';
// Types only: the code runs from whichever source tree the child is given (this one or --baseline).
import type { buildIndex as BuildIndex } from '../../src/index/build-index.js';
import type { buildPart as BuildPart, mergeParts as MergeParts } from '../../src/index/build-part.js';

/** The sample corpus's `.scp` files name clips under this absolute root (src/sample/sample-release-shape.ts). */
const SAMPLE_AUDIO_ROOT = '/datasets/Audio-FLAN-Dataset';
const HERE = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface ChildResult {
  readonly records: number;
  readonly jsonlBytes: number;
  /** The build's own wall time (tokenizer load included). */
  readonly seconds: number;
  /** User + system CPU seconds of the whole process, worker and tokenizer threads included. */
  readonly cpu: number;
  readonly fingerprint?: string;
}

/** One build step in this process, through the modules of source tree `src`. */
async function child(mode: string, src: string, corpus: string, out: string, arg: string): Promise<void> {
  const mod = async <T>(path: string): Promise<T> => (await import(join(src, 'src', path))) as T;
  const common = { corpus, out, audioRoots: [SAMPLE_AUDIO_ROOT] };
  // Modules load before the clock starts (their transpiling is the bench's cost, not the build's).
  const { buildIndex } = await mod<{ buildIndex: typeof BuildIndex }>('index/build-index.ts');
  const { buildPart, mergeParts } = await mod<{ buildPart: typeof BuildPart; mergeParts: typeof MergeParts }>(
    'index/build-part.ts',
  );
  const cpu0 = process.cpuUsage();
  let r: Omit<ChildResult, 'cpu'>;
  if (mode === 'one') {
    const s = await buildIndex({ ...common, workers: Number(arg) });
    r = { records: s.records, jsonlBytes: s.jsonlBytes, seconds: s.seconds, fingerprint: s.manifest.fingerprint };
  } else if (mode === 'part') {
    const [index, count] = arg.split('/').map(Number);
    const s = await buildPart({ ...common, workers: 1, part: { index: index!, count: count! } });
    r = { records: s.records, jsonlBytes: s.jsonlBytes, seconds: s.seconds };
  } else {
    const s = await mergeParts(common);
    r = { records: s.manifest.records, jsonlBytes: 0, seconds: s.seconds, fingerprint: s.manifest.fingerprint };
  }
  const used = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ ...r, cpu: (used.user + used.system) / 1e6 })}\n`);
}

function childArgs(mode: string, src: string, corpus: string, out: string, arg: string): string[] {
  return ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, src, corpus, out, arg];
}

function parse(stdout: string): ChildResult {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildResult;
}

/** Runs the children concurrently (parts start together, as an array job's tasks would). */
function runAll(argvs: string[][], cwd: string): Promise<ChildResult[]> {
  return Promise.all(
    argvs.map(
      (argv) =>
        new Promise<ChildResult>((ok, fail) => {
          const p = spawn(process.execPath, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.stderr.on('data', (d: Buffer) => (err += d.toString()));
          p.on('close', (code) =>
            code === 0
              ? ok(parse(out))
              : fail(new Error(`index child ${argv.slice(4).join(' ')} failed (exit ${String(code)}):\n${err}`)),
          );
        }),
    ),
  );
}

interface Run {
  readonly records: number;
  readonly jsonlBytes: number;
  readonly wall: number;
  readonly cpu: number;
  readonly merge: number;
  readonly fingerprint: string;
}

/** One from-scratch build of `config` ("one" or a part count) with the code of `src`. */
async function buildOnce(
  src: string,
  config: 'one' | number,
  workers: number,
  corpus: string,
  out: string,
): Promise<Run> {
  rmSync(out, { recursive: true, force: true });
  if (config === 'one') {
    const [r] = await runAll([childArgs('one', src, corpus, out, String(workers))], src);
    return {
      records: r!.records,
      jsonlBytes: r!.jsonlBytes,
      wall: r!.seconds,
      cpu: r!.cpu,
      merge: 0,
      fingerprint: r!.fingerprint ?? '',
    };
  }
  const parts = await runAll(
    Array.from({ length: config }, (_, i) => childArgs('part', src, corpus, out, `${i}/${config}`)),
    src,
  );
  const m = spawnSync(process.execPath, childArgs('merge', src, corpus, out, ''), {
    cwd: src,
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (m.status !== 0) throw new Error(`merge failed (exit ${String(m.status)}):\n${m.stderr}`);
  const merged = parse(m.stdout);
  return {
    records: parts.reduce((n, p) => n + p.records, 0),
    jsonlBytes: parts.reduce((n, p) => n + p.jsonlBytes, 0),
    wall: Math.max(...parts.map((p) => p.seconds)),
    cpu: parts.reduce((n, p) => n + p.cpu, 0),
    merge: merged.seconds,
    fingerprint: merged.fingerprint ?? '',
  };
}

const median = (xs: number[]): number => stats(xs).median;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      records: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '5' },
      corpus: { type: 'string' },
      seed: { type: 'string', default: '0' },
      parts: { type: 'string', default: '1,2' },
      workers: { type: 'string', default: '1' },
      baseline: { type: 'string' },
      child: { type: 'boolean', default: false },
    },
  });
  if (values.child) {
    const [mode, src, corpus, out, arg] = positionals;
    await child(mode!, src!, corpus!, out!, arg ?? '');
    return;
  }
  const runs = Number(values.runs);
  const workers = Number(values.workers);
  const partCounts = values.parts
    .split(',')
    .filter((p) => p !== '')
    .map(Number);
  const trees: [string, string][] = [
    ['current', HERE],
    ...(values.baseline ? [['baseline', resolve(values.baseline)] as [string, string]] : []),
  ];
  const configs: ('one' | number)[] = ['one', ...partCounts];
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-bench-'));
  try {
    let corpus = values.corpus;
    if (!corpus) {
      corpus = join(dir, 'corpus');
      const t = performance.now();
      const g = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(HERE, 'src/cli.ts'),
          'sample-corpus',
          corpus,
          '--records',
          values.records,
          '--seed',
          values.seed,
        ],
        { encoding: 'utf8' },
      );
      if (g.status !== 0) throw new Error(`sample-corpus failed:\n${g.stderr}`);
      process.stderr.write(`${g.stdout.trim()} (${fmt((performance.now() - t) / 1000, 1)} s)\n`);
    }
    const results = new Map<string, Run[]>();
    for (let i = 0; i < runs; i++) {
      // Alternate the order every run: the first build of a round meets a different page cache.
      const round = trees.flatMap(([name, src]) => configs.map((c) => [name, src, c] as const));
      if (i % 2 === 1) round.reverse();
      for (const [name, src, c] of round) {
        const r = await buildOnce(src, c, workers, corpus, join(dir, 'index'));
        const key = `${name}\u0000${String(c)}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        const merge = c === 'one' ? '' : `, merge ${fmt(r.merge, 2)} s`;
        process.stderr.write(
          `run ${i + 1}/${runs} ${name} ${c === 'one' ? `one process (workers ${workers})` : `${c} parts`}: ${fmt(r.records)} records in ${fmt(r.wall, 2)} s, ${fmt(r.cpu, 2)} CPU-s${merge}\n`,
        );
      }
    }
    const first = [...results.values()][0]![0]!;
    console.log(
      `\nIndexing ${fmt(first.records)} records (${fmt(first.jsonlBytes / 1e6, 1)} MB of JSONL) from scratch, ${runs} runs each, ${cpus().length} CPUs, Node ${process.version}\n`,
    );
    console.log(
      '| code | build | records/s wall (median) | min | max | records per CPU-second (median) | min | max | merge s (median) |',
    );
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    const perCore = new Map<string, number>();
    for (const [name] of trees) {
      for (const c of configs) {
        const rs = results.get(`${name}\u0000${String(c)}`)!;
        const wall = rs.map((r) => r.records / r.wall);
        const cpu = rs.map((r) => r.records / r.cpu);
        perCore.set(`${name}\u0000${String(c)}`, median(cpu));
        const label =
          c === 'one'
            ? `one process, ${workers} worker${workers > 1 ? 's' : ''}`
            : `${c} part${c > 1 ? 's' : ''} (${c} processes) + merge`;
        console.log(
          `| ${name} | ${label} | ${fmt(median(wall))} | ${fmt(Math.min(...wall))} | ${fmt(Math.max(...wall))} | ${fmt(median(cpu))} | ${fmt(Math.min(...cpu))} | ${fmt(Math.max(...cpu))} | ${c === 'one' ? '' : fmt(median(rs.map((r) => r.merge)), 2)} |`,
        );
      }
    }
    if (values.baseline) {
      const ratio = (c: 'one' | number): string =>
        fmt(perCore.get(`current\u0000${String(c)}`)! / perCore.get(`baseline\u0000${String(c)}`)!, 2);
      console.log(
        `\ncurrent / baseline, records per CPU-second: ${configs.map((c) => `${c === 'one' ? 'one process' : `${c} parts`} ${ratio(c)}×`).join(', ')}`,
      );
    }
    for (const n of partCounts.filter((n) => n > 1 && partCounts.includes(1))) {
      const wallOf = (k: number): number => median(results.get(`current\u0000${k}`)!.map((r) => r.records / r.wall));
      console.log(
        `current, ${n} parts / 1 part (median wall records/s, parts only): ${fmt(wallOf(n) / wallOf(1), 2)}×`,
      );
    }
    // Within one source tree, every configuration must write the same index (a partitioned build
    // equals the one-process build). Across trees the format version may differ.
    for (const [name] of trees) {
      const fps = new Set(configs.flatMap((c) => results.get(`${name}\u0000${String(c)}`)!.map((r) => r.fingerprint)));
      if (fps.size !== 1) throw new Error(`${name}: the builds disagree: fingerprints ${[...fps].join(', ')}`);
      console.log(`${name}: every build wrote index ${[...fps][0]!}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
