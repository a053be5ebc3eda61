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
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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

const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      records: { type: 'string', default: '20000,200000,1000000' },
      parts: { type: 'string', default: '2' },
      dir: { type: 'string', default: join(tmpdir(), 'flanstream-build-memory') },
      keep: { type: 'boolean', default: false },
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
    row('one process (`index --workers 1`)', await run('one', corpus, out));
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
