/**
 * Packing quality and speed on a 20,000-record sample index: fill ratio (real tokens ÷ row
 * capacity) of flanstream's packing (oldest unit first, then best fit from a sliding window)
 * against a greedy first-fit baseline written here (open rows; each example goes into the first
 * open row where it fits, else a new row; a full row closes, and the oldest open row closes when
 * more than K are open) and against no packing, over the same example sequence, at seq_len
 * 2048 / 4096 / 8192; and flanstream's throughput (tokens/s of StreamSession.next(): planning,
 * token copy, batch columns). Fill: median over --runs seeds; throughput: median of --runs runs.
 *   npx tsx test/bench/packing-bench.ts [--runs 5] [--examples 12000] [--records 20000]
 */
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { arg, benchIndex, fmtM, stats } from './bench-util.js';
import { openCore } from './stream/open-core.js';

const runs = arg('runs', 5);
const examples = arg('examples', 12_000);
const core: DataServiceCore = await openCore(benchIndex(arg('records', 20_000)));
const B = 8;

interface Result {
  readonly fill: number;
  readonly tokensPerSecond: number;
}

/** A flanstream train stream until `examples` examples were served. */
function flanstream(L: number, seed: number, packing: 'none' | 'packed', window = 256): Result {
  const session = core.open({ spec: { split: 'train', batchSize: B, seqLen: L, packing, seed, window } });
  let served = 0;
  let tokens = 0;
  let rows = 0;
  const started = performance.now();
  while (served < examples) {
    const m = session.next();
    if (!m || !('batch' in m)) throw new Error('train stream ended');
    served += m.batch.uuids.length;
    tokens += m.batch.tokens.byteLength / 4;
    rows += m.batch.batchSize;
  }
  const seconds = (performance.now() - started) / 1000;
  return { fill: tokens / (rows * L), tokensPerSecond: tokens / seconds };
}

/** Segment lengths in draw order: packing none serves the sampler's units one per row. */
function unitLengths(L: number, seed: number): number[] {
  const session = core.open({ spec: { split: 'train', batchSize: 64, seqLen: L, packing: 'none', seed } });
  const out: number[] = [];
  while (out.length < examples) {
    const m = session.next();
    if (!m || !('batch' in m)) throw new Error('train stream ended');
    out.push(...m.batch.segLength);
  }
  return out.slice(0, examples);
}

/** Greedy first fit with at most K open rows; the fill over every row it used. */
function firstFit(lengths: readonly number[], L: number, K: number): number {
  let open: number[] = [];
  let closed = 0;
  for (const len of lengths) {
    let i = open.findIndex((free) => free >= len);
    if (i < 0) {
      open.push(L);
      i = open.length - 1;
    }
    open[i]! -= len;
    if (open[i] === 0) {
      open.splice(i, 1);
      closed++;
    }
    if (open.length > K) {
      open = open.slice(1);
      closed++;
    }
  }
  return lengths.reduce((a, b) => a + b, 0) / ((closed + open.length) * L);
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
const lines: string[] = [];
for (const L of [2048, 4096, 8192]) {
  flanstream(L, 0, 'packed'); // warm-up: JIT and the index's token blocks
  const rows: [string, Result[]][] = [
    ['flanstream best fit, window 256', []],
    ['flanstream best fit, window 16', []],
    ['flanstream next fit (window 1)', []],
    ['first fit, K = 256 open rows (baseline)', []],
    ['first fit, K = 16 open rows (baseline)', []],
    ['none (one example per row)', []],
  ];
  for (let r = 0; r < runs; r++) {
    const seed = r + 1;
    rows[0]![1].push(flanstream(L, seed, 'packed', 256));
    rows[1]![1].push(flanstream(L, seed, 'packed', 16));
    rows[2]![1].push(flanstream(L, seed, 'packed', 1));
    const lengths = unitLengths(L, seed);
    rows[3]![1].push({ fill: firstFit(lengths, L, 256), tokensPerSecond: Number.NaN });
    rows[4]![1].push({ fill: firstFit(lengths, L, 16), tokensPerSecond: Number.NaN });
    rows[5]![1].push(flanstream(L, seed, 'none'));
  }
  for (const [name, rs] of rows) {
    const fill = stats(rs.map((x) => x.fill));
    const tps = stats(rs.map((x) => x.tokensPerSecond));
    const speed = Number.isNaN(tps.median) ? '—' : `${fmtM(tps.median)} (${fmtM(tps.min)}–${fmtM(tps.max)})`;
    lines.push(`| ${L} | ${name} | ${pct(fill.median)} | ${pct(fill.min)}–${pct(fill.max)} | ${speed} |`);
  }
}
console.log('| seq_len | packing | fill median | fill min–max | flanstream tokens/s median (min–max) |');
console.log('|---:|---|---:|---:|---:|');
for (const l of lines) console.log(l);
console.log(
  `\n${runs} runs (seeds 1–${runs}), ${examples.toLocaleString('en')} examples each, batch ${B} rows, natural mixture, overlong drop; the baselines pack the same example sequence (lengths only). tokens/s: real tokens served per second of StreamSession.next() on a shared 2-core machine.`,
);
