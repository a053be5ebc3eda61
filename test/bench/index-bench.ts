/**
 * Indexing throughput: `npx tsx test/bench/index-bench.ts [--records 200000] [--runs 5] [--corpus DIR]`.
 * Writes a sample corpus once (or uses --corpus), then indexes it from scratch with 1 and with 2
 * workers, alternating, `runs` times each; every run is a fresh child process, so no run profits
 * from another's warm caches or loaded tokenizer. Prints a markdown table of records/s and MB/s
 * of (decompressed) JSONL, and the workers-2 / workers-1 ratio of the medians.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

interface RunResult {
  readonly records: number;
  readonly jsonlBytes: number;
  readonly seconds: number;
}

async function child(corpus: string, out: string, workers: number): Promise<void> {
  const { buildIndex } = await import('../../src/index/build-index.js');
  const s = await buildIndex({ corpus, out, workers, audioRoots: [SAMPLE_AUDIO_ROOT] });
  const result: RunResult = { records: s.records, jsonlBytes: s.jsonlBytes, seconds: s.seconds };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runOnce(corpus: string, out: string, workers: number): RunResult {
  rmSync(out, { recursive: true, force: true });
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', corpus, out, String(workers)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`index run failed (exit ${String(r.status)}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as RunResult;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { records: { type: 'string', default: '200000' }, runs: { type: 'string', default: '5' }, corpus: { type: 'string' }, seed: { type: 'string', default: '0' }, child: { type: 'boolean', default: false } },
  });
  if (values.child) {
    const [corpus, out, workers] = positionals;
    await child(corpus!, out!, Number(workers));
    return;
  }
  const records = Number(values.records);
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-bench-'));
  try {
    let corpus = values.corpus;
    if (!corpus) {
      corpus = join(dir, 'corpus');
      const { writeSampleCorpus } = await import('../../src/sample/sample-corpus.js');
      const t = performance.now();
      const s = await writeSampleCorpus(corpus, { records, seed: Number(values.seed) });
      process.stderr.write(`sample corpus: ${fmt(s.records)} records, ${fmt(s.files.total)} files, ${fmt(s.bytes / 1e6, 1)} MB in ${fmt((performance.now() - t) / 1000, 1)} s\n`);
    }
    const results: Record<1 | 2, RunResult[]> = { 1: [], 2: [] };
    for (let i = 0; i < runs; i++) {
      for (const w of i % 2 === 0 ? ([1, 2] as const) : ([2, 1] as const)) {
        const r = runOnce(corpus, join(dir, 'index'), w);
        results[w].push(r);
        process.stderr.write(`run ${i + 1}/${runs}, workers ${w}: ${fmt(r.records)} records in ${fmt(r.seconds, 2)} s (${fmt(r.records / r.seconds)} records/s)\n`);
      }
    }
    const rows = ([1, 2] as const).map((w) => {
      const rps = results[w].map((r) => r.records / r.seconds);
      const mbs = results[w].map((r) => r.jsonlBytes / 1e6 / r.seconds);
      return { w, rps, mbs };
    });
    const first = results[1][0]!;
    console.log(`\nIndexing ${fmt(first.records)} records (${fmt(first.jsonlBytes / 1e6, 1)} MB of JSONL) from scratch, ${runs} runs each, ${cpus().length} CPUs, Node ${process.version}\n`);
    console.log('| workers | records/s (median) | min | max | MB/s JSONL (median) | min | max |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|');
    for (const { w, rps, mbs } of rows) {
      console.log(`| ${w} | ${fmt(median(rps))} | ${fmt(Math.min(...rps))} | ${fmt(Math.max(...rps))} | ${fmt(median(mbs), 2)} | ${fmt(Math.min(...mbs), 2)} | ${fmt(Math.max(...mbs), 2)} |`);
    }
    console.log(`\nworkers 2 / workers 1 (median records/s): ${fmt(median(rows[1]!.rps) / median(rows[0]!.rps), 2)}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
