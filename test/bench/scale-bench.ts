/**
 * Index scale: time to open an index and serve the first batch, and memory after it, for synthetic
 * indexes of 1M, 5M and 20M records (test/bench/synthetic-index.ts, the real format written
 * directly), each measured in a fresh child process. Medians of --runs runs with min and max, and a
 * linear extrapolation to Audio-FLAN's 108.5M records. Targets: flat in records, < 1 s and
 * < 300 MB at 20M.
 *   npx tsx test/bench/scale-bench.ts [--records 1000000,5000000,20000000] [--runs 5] [--dir /tmp/flanstream-scale] [--heldout loco-speech-caption]
 * --heldout names the stream's held-out set (default: the config's default_heldout, unseen-flag).
 * Indexes are kept in --dir and reused while their format is current (about 380 bytes per record on
 * disk: 7.4 GB at 20M); one of an older format is rewritten.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { indexIsCurrent } from '../../src/index/manifest-io.js';
import { ROOT, stats } from './bench-util.js';

interface Sample {
  /** DataServiceCore.open, wall ms. */
  open: number;
  /** core.open(spec) + first session.next(), wall ms. */
  first: number;
  /** CPU ms (user + system) of the whole child up to the first batch, startup included. */
  cpu: number;
  rss: number;
  heap: number;
}

async function child(dir: string, heldout: string | undefined): Promise<void> {
  const { DataServiceCore } = await import('../../src/stream/data-service-core.js');
  const { coreSettings } = await import('../../src/config/core-settings.js');
  const { loadConfig } = await import('../../src/config/load-config.js');
  const t0 = performance.now();
  const core = await DataServiceCore.open(dir, coreSettings(loadConfig(undefined, { 'index.dir': dir }, {})));
  const t1 = performance.now();
  const session = core.open({ spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 0, ...(heldout ? { heldout: { name: heldout } } : {}) } });
  const batch = session.next();
  const t2 = performance.now();
  if (!batch) throw new Error('no first batch');
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const out: Sample = { open: t1 - t0, first: t2 - t1, cpu: (cpu.user + cpu.system) / 1000, rss: mem.rss, heap: mem.heapUsed };
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const argv = process.argv;
  // `--name value`, or `--name=value` (what `npm run bench -- scale --records=…` can pass through).
  const opt = (name: string, fallback: string): string => {
    const eq = argv.find((a) => a.startsWith(`--${name}=`));
    if (eq) return eq.slice(name.length + 3);
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] ?? fallback : fallback;
  };
  const childAt = argv.indexOf('--child');
  const heldout = opt('heldout', '') || undefined;
  if (childAt >= 0) return child(argv[childAt + 1] ?? '', heldout);
  const sizes = opt('records', '1000000,5000000,20000000').split(',').map(Number);
  const runs = Number(opt('runs', '5'));
  const base = opt('dir', '/tmp/flanstream-scale');
  const self = fileURLToPath(import.meta.url);
  const rows: string[] = [];
  const fits: { n: number; open: number; first: number; rss: number }[] = [];
  for (const n of sizes) {
    const dir = join(base, String(n));
    if (!indexIsCurrent(dir)) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/synthetic-index.ts'), dir, '--records', String(n)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) throw new Error(`synthetic index of ${n} records failed`);
    }
    const manifestBytes = statSync(join(dir, 'manifest.msgpack')).size;
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`child for ${n} records exited ${r.status}`);
      samples.push(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Sample);
    }
    const f = (xs: number[], d = 0, scale = 1): string => {
      const s = stats(xs.map((x) => x / scale));
      return `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
    };
    const total = samples.map((s) => s.open + s.first);
    rows.push(`| ${(n / 1e6).toFixed(0)}M | ${(manifestBytes / 1024).toFixed(0)} KB | ${f(samples.map((s) => s.open))} | ${f(samples.map((s) => s.first))} | ${f(total)} | ${f(samples.map((s) => s.cpu))} | ${f(samples.map((s) => s.rss), 0, 1 << 20)} | ${f(samples.map((s) => s.heap), 0, 1 << 20)} |`);
    fits.push({ n, open: stats(samples.map((s) => s.open)).median, first: stats(samples.map((s) => s.first)).median, rss: stats(samples.map((s) => s.rss)).median / (1 << 20) });
  }
  console.log('| records | manifest | open ms | first batch ms | open + first ms | child CPU ms | RSS MB | heap MB |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  // Least-squares line through the medians, evaluated at Audio-FLAN's size.
  const target = 108.5e6;
  const line = (ys: number[]): number => {
    const xs = fits.map((p) => p.n);
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    const slope = sxx === 0 ? 0 : xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] ?? 0) - my), 0) / sxx;
    return my + slope * (target - mx);
  };
  if (fits.length > 1) {
    console.log(`\nLinear extrapolation to 108.5M records: open ${line(fits.map((p) => p.open)).toFixed(0)} ms, first batch ${line(fits.map((p) => p.first)).toFixed(0)} ms, RSS ${line(fits.map((p) => p.rss)).toFixed(0)} MB.`);
  }
  console.log(`\n${runs} fresh child processes per size (median, min–max); batch 8 × 4096 packed, split train, default config, held-out set ${heldout ?? 'unseen-flag (the default)'}.`);
}

await main();
