/**
 * Index build memory against part size: `npx tsx test/bench/build-memory-bench.ts [--records
 * 20000,200000,1000000] [--parts 2] [--dir DIR] [--keep]`.
 *
 * For every size, writes a release-shaped sample corpus (`sample-corpus --seed 0`, kept in `--dir`
 * and reused when it is already there), then builds its index from scratch in fresh child
 * processes: one process (`index --workers 1`, what a part of a partitioned build runs), and
 * `--parts N` parts started together followed by their merge. Each child reports its peak RSS
 * (getrusage maxrss, the figure `/usr/bin/time -v` prints as "Maximum resident set size") and its
 * CPU seconds. A bounded build shows the same peak at every size; the sizes run in the order
 * given, each build alone, so the table is one run's side-by-side figures.
 *
 * `--baseline DIR` (repeatable: source trees of older commits, e.g. `git archive <commit> | tar -x
 * -C DIR` with node_modules linked in) adds their one-process builds of the same corpus, run by the
 * tree's own CLI (`src/cli.ts index`, measured by build/report-usage.mjs) and alternated with this
 * tree's build `--runs` times: the table gives medians (min–max) per tree, side by side.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt } from './bench-util.js';
import { buildIndex } from '../../src/index/build-index.js';
import { buildPart, mergeParts } from '../../src/index/build-part.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

const HERE = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface Measured {
  readonly records: number;
  readonly peakMB: number;
  readonly cpu: number;
  readonly wall: number;
}

/** One build step in this process; prints what it measured as a JSON line. */
async function child(mode: string, corpus: string, out: string, arg: string): Promise<void> {
  const common = { corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] };
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  let records: number;
  if (mode === 'one') records = (await buildIndex(common)).records;
  else if (mode === 'part') {
    const [index, count] = arg.split('/').map(Number);
    records = (await buildPart({ ...common, part: { index: index!, count: count! } })).records;
  } else records = (await mergeParts(common)).manifest.records;
  const used = process.cpuUsage(cpu0);
  const m: Measured = {
    records,
    peakMB: process.resourceUsage().maxRSS / 1024,
    cpu: (used.user + used.system) / 1e6,
    wall: (performance.now() - t) / 1000,
  };
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

/** A one-process build by the CLI of the source tree `tree` (`index --workers 1`). */
function runCli(tree: string, corpus: string, out: string, records: number): Promise<Measured> {
  const usage = join(out, '..', `usage-${process.pid}.jsonl`);
  rmSync(usage, { force: true });
  const argv = [
    '--import',
    'tsx',
    '--import',
    join(HERE, 'test/bench/build/report-usage.mjs'),
    join(tree, 'src/cli.ts'),
    'index',
    corpus,
    '--out',
    out,
    '--workers',
    '1',
    '--audio-root',
    SAMPLE_AUDIO_ROOT,
  ];
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, argv, {
      cwd: tree,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, FLANSTREAM_USAGE_FILE: usage },
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    p.on('close', (code) => {
      if (code !== 0) return fail(new Error(`index by ${tree} failed (exit ${String(code)}):\n${stderr}`));
      const line = readFileSync(usage, 'utf8').trim().split('\n').at(-1) ?? '';
      rmSync(usage, { force: true });
      ok({ records, ...(JSON.parse(line) as Omit<Measured, 'records'>) });
    });
  });
}

function run(mode: string, corpus: string, out: string, arg = ''): Promise<Measured> {
  const argv = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, corpus, out, arg];
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, argv, { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) =>
      code === 0
        ? ok(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Measured)
        : fail(new Error(`build child ${mode} ${arg} failed (exit ${String(code)}):\n${stderr}`)),
    );
  });
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      records: { type: 'string', default: '20000,200000,1000000' },
      parts: { type: 'string', default: '2' },
      dir: { type: 'string', default: join(tmpdir(), 'flanstream-build-memory') },
      keep: { type: 'boolean', default: false },
      baseline: { type: 'string', multiple: true, default: [] },
      runs: { type: 'string', default: '1' },
      child: { type: 'boolean', default: false },
    },
  });
  if (values.child) {
    const [mode, corpus, out, arg] = positionals;
    await child(mode!, corpus!, out!, arg ?? '');
    return;
  }
  const sizes = values.records.split(',').map(Number);
  const parts = Number(values.parts);
  mkdirSync(values.dir, { recursive: true });
  console.log(`| records | build | peak RSS MB | CPU s | wall s | records per CPU-s |`);
  console.log(`|---:|---|---:|---:|---:|---:|`);
  for (const n of sizes) {
    const corpus = join(values.dir, `corpus-${n}`);
    if (!existsSync(join(corpus, 'metadata'))) {
      const g = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(HERE, 'src/cli.ts'), 'sample-corpus', corpus, '--records', String(n), '--seed', '0'],
        { cwd: HERE, encoding: 'utf8' },
      );
      if (g.status !== 0) throw new Error(`sample-corpus failed:\n${g.stderr}`);
    }
    const row = (what: string, m: Measured, records = m.records): void =>
      console.log(
        `| ${fmt(n)} | ${what} | ${fmt(m.peakMB)} | ${fmt(m.cpu, 1)} | ${fmt(m.wall, 1)} | ${fmt(records / m.cpu)} |`,
      );
    const out = join(values.dir, `index-${n}`);
    rmSync(out, { recursive: true, force: true });
    if (values.baseline.length === 0) row('one process (`index --workers 1`)', await run('one', corpus, out));
    else {
      // This tree and each baseline, alternated run by run, each by its own CLI.
      const trees = [HERE, ...values.baseline.map((b) => resolve(b))];
      const got = trees.map((): Measured[] => []);
      for (let r = 0; r < Number(values.runs); r++)
        for (const [i, tree] of trees.entries()) {
          got[i]!.push(await runCli(tree, corpus, out, n));
          rmSync(out, { recursive: true, force: true });
        }
      for (const [i, tree] of trees.entries()) {
        const ms = got[i]!;
        const med = (f: (m: Measured) => number, digits = 1): string => {
          const xs = ms.map(f).sort((a, b) => a - b);
          const m = xs.length % 2 ? xs[xs.length >> 1]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
          return xs.length > 1
            ? `${fmt(m, digits)} (${fmt(xs[0]!, digits)}–${fmt(xs.at(-1)!, digits)})`
            : fmt(m, digits);
        };
        console.log(
          `| ${fmt(n)} | one process, ${i === 0 ? 'this tree' : tree} | ${med((m) => m.peakMB, 0)} | ${med((m) => m.cpu)} | ${med((m) => m.wall)} | ${med((m) => n / m.cpu, 0)} |`,
        );
      }
    }
    if (parts > 1) {
      const pout = join(values.dir, `parts-${n}`);
      rmSync(pout, { recursive: true, force: true });
      const ps = await Promise.all(Array.from({ length: parts }, (_, i) => run('part', corpus, pout, `${i}/${parts}`)));
      const worst = ps.reduce((a, b) => (b.peakMB > a.peakMB ? b : a));
      row(`largest of ${parts} parts`, worst);
      row('merge', await run('merge', corpus, pout));
      rmSync(pout, { recursive: true, force: true });
    }
    rmSync(out, { recursive: true, force: true });
    if (!values.keep) rmSync(corpus, { recursive: true, force: true });
  }
  if (!values.keep) rmSync(values.dir, { recursive: true, force: true });
}

await main();
