/**
 * `npm run bench -- shuffle [--records 1000000] [--steps 2000]`: what the
 * record order costs in index pages and what it gives in shuffle quality, for `shuffle: global`
 * and `shuffle: blocks` at several windows and block sizes, on one synthetic index (written once
 * under /tmp/shuffle-bench-<records>; test/bench/synthetic-index.ts) with the real planner
 * (sampler, walker, best-fit packing: 8 × 4096 per step, natural mixture, default held-out set).
 *
 * Pages of a planned step are computed from its records' token ranges and rows, as a shard lays
 * them out (tokens in row order, PAGE_TOKENS per token page; PAGE_BYTES.rows per row page): the
 * synthetic index shares token ranges between records to save disk, so its TOK_START would make
 * distant records look like page neighbours. Columns:
 * - pages/step: distinct token + row pages a step touches;
 * - read/step: pages a step reads through an LRU page cache of 10 % or 1 % of the index's bytes
 *   (after a warm-up of a quarter of the steps): what the server reads from disk or S3. A blocks
 *   order's working set is about tasks × window blocks' pages, whatever the index size;
 * - near: share of consecutive draws of a task that lie within a page's worth of records of each
 *   other in the task's list (a uniform order: about 2 × records per page / task size);
 * - lag-1 r: correlation of the list positions of consecutive draws of a task (0 for a uniform order);
 * - file ρ: rank correlation between draw order and list order within a task (0: no trace of the
 *   source file's order);
 * - plan: planning CPU per step relative to global (median of 3 runs, interleaved).
 */
import { existsSync } from 'node:fs';
import { PAGE_BYTES, PAGE_TOKENS, ROW, ROW_WIDTH } from '../../src/index/format.js';
import type { IndexReader } from '../../src/index/index-reader.js';
import type { Segment } from '../../src/pack/segment-layout.js';
import { SegmentLayout } from '../../src/pack/segment-layout.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { blockShapes, BLOCK_TOKENS, type ShuffleSpec } from '../../src/stream/shuffle-spec.js';
import { parseSpec, type StreamSpec } from '../../src/stream/stream-spec.js';
import { TrainPlanner } from '../../src/stream/train-planner.js';
import type { MixtureSpec } from '../../src/mix/mixture.js';
import { arg, stats } from './bench-util.js';
import { openCore } from './stream/open-core.js';
import { writeSyntheticIndex } from './synthetic-index.js';

const records = arg('records', 1_000_000);
const steps = arg('steps', 2000);
const CACHES = [0.1, 0.01];
const B = 8;
const L = 4096;

const dir = `/tmp/shuffle-bench-${records}`;
if (!existsSync(`${dir}/manifest.msgpack`)) await writeSyntheticIndex(dir, { records });
const core: DataServiceCore = await openCore(dir);
const { catalog } = core;
const reader: IndexReader = catalog.reader;

/** Per shard: each row's first token as laid out in row order (prefix sums of record lengths). */
const starts: Float64Array[] = reader.manifest.shards.map((s, i) => {
  const out = new Float64Array(s.records + 1);
  for (let r = 0; r < s.records; r++) {
    const f = reader.row(i, r);
    out[r + 1] = out[r]! + (f[ROW.INSTR_LEN] ?? 0) + (f[ROW.INPUT_LEN] ?? 0) + (f[ROW.OUTPUT_LEN] ?? 0);
  }
  return out;
});
const tokenPages = starts.reduce((n, s) => n + Math.ceil((s[s.length - 1] ?? 0) / PAGE_TOKENS), 0);
const rowPages = reader.manifest.shards.reduce(
  (n, s) => n + Math.ceil((s.records * ROW_WIDTH * 4) / PAGE_BYTES.rows),
  0,
);
const indexBytes = tokenPages * PAGE_BYTES.tokens + rowPages * PAGE_BYTES.rows;

/** Page keys (and their sizes) a record touches: its token pages and its row's page. */
function pagesOf(shard: number, row: number, out: Map<string, number>): void {
  const s = starts[shard]!;
  const first = Math.floor(s[row]! / PAGE_TOKENS);
  const last = Math.floor((s[row + 1]! - 1) / PAGE_TOKENS);
  for (let p = first; p <= last; p++) out.set(`t${shard}:${p}`, PAGE_BYTES.tokens);
  out.set(`r${shard}:${Math.floor((row * ROW_WIDTH * 4) / PAGE_BYTES.rows)}`, PAGE_BYTES.rows);
}

class Lru {
  private readonly pages = new Map<string, number>();
  private bytes = 0;
  constructor(private readonly cap: number) {}
  /** Touches a page; true when it had to be read. */
  touch(key: string, size: number): boolean {
    const hit = this.pages.delete(key);
    this.pages.set(key, size);
    if (hit) return false;
    this.bytes += size;
    for (const [k, v] of this.pages) {
      if (this.bytes <= this.cap) break;
      this.pages.delete(k);
      this.bytes -= v;
    }
    return true;
  }
}

function planner(shuffle: ShuffleSpec | undefined): TrainPlanner {
  const heldout = catalog.named.heldout(undefined);
  const mixture = catalog.named.mixture(undefined, 'mixture', true);
  let spec: StreamSpec = parseSpec(
    { split: 'train', batchSize: B, seqLen: L, packing: 'packed', seed: 1 },
    mixture,
    heldout.spec,
    heldout.name,
    catalog.settings.defaults,
    catalog.settings.limits,
  ).spec;
  if (shuffle) spec = { ...spec, shuffle };
  catalog.resolveMixture(mixture, heldout, 'mixture', spec);
  // Wired as src/stream/planner-factory.ts wires a train stream's planner.
  const layout = new SegmentLayout(catalog.table(0), catalog.template, catalog.audioView(spec));
  const resolve = (m: MixtureSpec, field: string): Float64Array => catalog.resolveMixture(m, heldout, field, spec);
  return new TrainPlanner({
    spec,
    layout,
    table: layout.table,
    heldout,
    filter: catalog.guard(heldout),
    servable: catalog.servability(heldout, spec),
    resolve,
    shareWindow: catalog.settings.shareWindowSteps,
  });
}

interface Row {
  readonly name: string;
  readonly shuffle: ShuffleSpec | undefined;
}
const rows: Row[] = [{ name: 'global', shuffle: undefined }];
for (const window of [1, 4, 16, 64, 256])
  rows.push({ name: `blocks w=${window}`, shuffle: { name: 'blocks', window, blockTokens: BLOCK_TOKENS } });
for (const blockTokens of [4096, 65_536])
  rows.push({
    name: `blocks w=16, ${blockTokens / 1024}k-token blocks`,
    shuffle: { name: 'blocks', window: 16, blockTokens },
  });

const tasks = reader.tasks.length;
/** Records per page's worth of each task: the "near" distance (the same for every row). */
const near = blockShapes({ name: 'blocks', window: 1, blockTokens: PAGE_TOKENS }, reader.tasks)!.map((s) => s.block);

function measure(shuffle: ShuffleSpec | undefined): {
  pages: number;
  reads: number[];
  near: number;
  lag1: number;
  fileRho: number;
  ms: number;
} {
  const p = planner(shuffle);
  const lrus = CACHES.map((f) => new Lru(Math.floor(indexBytes * f)));
  const warm = Math.floor(steps / 4);
  const perStep: number[] = [];
  const reads: number[][] = CACHES.map(() => []);
  const draws: number[][] = Array.from({ length: tasks }, () => []);
  let ms = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    p.beginStep(s);
    const planned: Segment[][] = p.planRows(B);
    ms += performance.now() - t0;
    const touched = new Map<string, number>();
    for (const row of planned) {
      for (const seg of row) {
        for (const turn of seg.turns) {
          pagesOf(turn.loc.shard, turn.loc.row, touched);
          draws[turn.loc.task]!.push(turn.loc.i);
        }
      }
    }
    perStep.push(touched.size);
    lrus.forEach((lru, c) => {
      let r = 0;
      for (const [k, size] of touched) if (lru.touch(k, size)) r++;
      if (s >= warm) reads[c]!.push(r);
    });
  }
  // Quality, pooled over tasks (positions as a fraction of the task's size).
  let pairs = 0;
  let nearPairs = 0;
  let sx = 0,
    sy = 0,
    sxx = 0,
    syy = 0,
    sxy = 0;
  let rhoSum = 0;
  let rhoWeight = 0;
  draws.forEach((d, t) => {
    const n = catalog.table(0).size(t);
    if (d.length < 2 || n === 0) return;
    for (let k = 0; k + 1 < d.length; k++) {
      const x = d[k]! / n;
      const y = d[k + 1]! / n;
      pairs++;
      if (Math.abs(d[k]! - d[k + 1]!) < near[t]!) nearPairs++;
      sx += x;
      sy += y;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
    }
    if (d.length >= 20) {
      rhoSum += spearman(d) * d.length;
      rhoWeight += d.length;
    }
  });
  const cov = sxy / pairs - (sx / pairs) * (sy / pairs);
  const lag1 = cov / Math.sqrt((sxx / pairs - (sx / pairs) ** 2) * (syy / pairs - (sy / pairs) ** 2));
  return {
    pages: mean(perStep),
    reads: reads.map(mean),
    near: nearPairs / pairs,
    lag1,
    fileRho: rhoSum / rhoWeight,
    ms: ms / steps,
  };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Spearman's ρ between draw order (0, 1, 2, …) and the drawn list positions. */
function spearman(d: readonly number[]): number {
  const order = d.map((v, k) => [v, k] as const).sort((a, b) => a[0] - b[0]);
  const rank = new Float64Array(d.length);
  order.forEach(([, k], r) => (rank[k] = r));
  const n = d.length;
  let s = 0;
  for (let k = 0; k < n; k++) s += (rank[k]! - k) ** 2;
  return 1 - (6 * s) / (n * (n * n - 1));
}

const results = new Map<string, ReturnType<typeof measure>[]>();
for (let rep = 0; rep < 3; rep++)
  for (const r of rows) results.set(r.name, [...(results.get(r.name) ?? []), measure(r.shuffle)]);

const globalMs = stats(results.get('global')!.map((m) => m.ms)).median;
const mb = (x: number): string => `${(x / 2 ** 20).toFixed(0)} MB`;
console.log(
  `synthetic index: ${records.toLocaleString('en')} records, ${mb(indexBytes)} of token and row pages; ${steps} steps of ${B} x ${L} (packed, natural mixture, seed 1)\n`,
);
console.log(
  `| order | pages/step | ${CACHES.map((f) => `read/step, cache ${f * 100} % (${mb(indexBytes * f)})`).join(' | ')} | near | lag-1 r | file ρ | plan (x global) |`,
);
console.log(`|---|---|${CACHES.map(() => '---|').join('')}---|---|---|---|`);
for (const r of rows) {
  const ms = results.get(r.name)!;
  const m = ms[0]!; // the page and quality figures are deterministic: every rep gives the same
  const rel = stats(ms.map((x) => x.ms)).median / globalMs;
  console.log(
    `| ${r.name} | ${m.pages.toFixed(1)} | ${m.reads.map((x) => x.toFixed(1)).join(' | ')} | ${(m.near * 100).toFixed(2)} % | ${m.lag1.toFixed(3)} | ${m.fileRho.toFixed(3)} | ${rel.toFixed(2)} |`,
  );
}
