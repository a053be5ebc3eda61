/**
 * The corpus-wide step of an index build (what `--merge` runs once every part is done, and the end
 * of a one-process build): the duplicate-uuid pass and the manifest compilation (task table, length
 * histograms, audio groups, exclusions), over synthetic indexes (test/bench/synthetic-index.ts, the
 * real format written directly, every uuid distinct). Each run is a fresh child process, so its
 * peak RSS is the step's own. With the bucket budget fixed, memory must not grow with the corpus
 * beyond one shard's tables; a tiny budget (forced spill to many temporary files) shows the cost
 * of spilling.
 *   npx tsx test/bench/merge-bench.ts [--records 1000000,5000000] [--per-bucket 4194304,1048576,65536] [--dir /tmp/flanstream-merge]
 * Indexes are kept in --dir and reused while their format is current.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { indexIsCurrent } from '../../src/index/manifest-io.js';
import { ROOT } from './bench-util.js';

interface Sample {
  readonly dedupeMs: number;
  /** compileIndex whole: the uuid pass again, then the manifest. */
  readonly compileMs: number;
  readonly duplicates: number;
  readonly maxRssMB: number;
}

async function child(dir: string, perBucket: number): Promise<void> {
  const { readManifest } = await import('../../src/index/manifest-io.js');
  const { compileIndex } = await import('../../src/index/compile-manifest.js');
  const { findDuplicateUuids } = await import('../../src/index/duplicate-uuids.js');
  const { ShardFiles } = await import('../../src/index/shard-access.js');
  const m = readManifest(dir);
  const shards = [...m.shards];
  const files = new ShardFiles(dir, shards);
  const t0 = performance.now();
  const dups = findDuplicateUuids(files, shards, perBucket);
  const t1 = performance.now();
  files.close();
  const { manifest } = compileIndex(dir, shards, m.vocab, m.options, m.template, perBucket);
  const t2 = performance.now();
  if (manifest.fingerprint !== m.fingerprint) throw new Error('the recompiled manifest differs from the index');
  const out: Sample = {
    dedupeMs: t1 - t0,
    compileMs: t2 - t1,
    duplicates: dups.length / 4,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const argv = process.argv;
  const opt = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1] ?? fallback;
    return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
  };
  if (argv.includes('--child')) return child(opt('child-dir', ''), Number(opt('child-bucket', '0')));
  const counts = opt('records', '1000000,5000000').split(',').map(Number);
  const budgets = opt('per-bucket', `${1 << 22},${1 << 20},65536`)
    .split(',')
    .map(Number);
  const base = opt('dir', '/tmp/flanstream-merge');
  const self = fileURLToPath(import.meta.url);
  console.log(
    '| records | per-bucket quads | uuid pass alone s | whole step s | records/s (whole step) | peak RSS MB |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const n of counts) {
    const dir = join(base, `merge-${n}`);
    if (!indexIsCurrent(dir)) {
      const { writeSyntheticIndex } = await import('./synthetic-index.js');
      await writeSyntheticIndex(dir, { records: n });
    }
    for (const per of budgets) {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', self, '--child', '--child-dir', dir, '--child-bucket', String(per)],
        { cwd: ROOT, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
      const total = s.compileMs / 1000;
      console.log(
        `| ${n.toLocaleString('en-US')} | ${per.toLocaleString('en-US')} | ${(s.dedupeMs / 1000).toFixed(1)} | ${total.toFixed(1)} | ${Math.round(n / total).toLocaleString('en-US')} | ${s.maxRssMB.toFixed(0)} |`,
      );
    }
  }
}

await main();
