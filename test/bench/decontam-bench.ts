/**
 * `npm run bench -- decontam [--records N]`: what the decontamination guards of a held-out set
 * cost at its first use, on the sample corpus of N records (default 200,000): building the guards
 * (held-out clips and n-grams collected and hashed), then classifying every train record once
 * (what the first train stream's mixture sizes do), and the memory it keeps (heap + array buffers).
 */
import { IndexReader } from '../../src/index/index-reader.js';
import { Contamination } from '../../src/splits/contamination.js';
import { NO_HELDOUT, resolveHeldout, type HeldoutSpec } from '../../src/splits/heldout.js';
import { arg, benchIndex } from './bench-util.js';

const records = arg('records', 200_000);
const reader = IndexReader.open(benchIndex(records));
const biggest = [...reader.datasets.values()].sort((a, b) => b.shards.length - a.shards.length)[0]!.name;

const SETS: [string, Partial<HeldoutSpec>][] = [
  ['Speech Caption, shared audio', { selectors: ['speech/Speech Caption'], excludeSharedAudio: true }],
  ['Speech Caption, 13-gram text', { selectors: ['speech/Speech Caption'], excludeOverlappingText: 13 }],
  [`dataset ${biggest}`, { datasets: [biggest] }],
  [
    'unseen flag, all guards (13-gram)',
    { unseenFlag: true, datasets: [biggest], excludeSharedAudio: true, excludeOverlappingText: 13 },
  ],
];

const gc = (globalThis as { gc?: () => void }).gc;
// The JS heap only: index pages read while classifying live in the reader's page cache (array
// buffers, bounded by index.cache_bytes), not in the guard; the guard's own arrays are counted exactly.
const heap = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed;
};
const mb = (b: number): string => (b / 2 ** 20).toFixed(1);

let trainRecords = 0;
for (const t of reader.tasks) trainRecords += t.counts[0];
console.log(
  `${reader.manifest.records.toLocaleString('en-US')} records (${trainRecords.toLocaleString('en-US')} train), ${reader.manifest.shards.length} shards${gc ? '' : ' (run with --expose-gc for exact memory)'}\n`,
);
console.log(
  '| held-out set | held-out records | clip identities | n-grams | build ms | classify all train ms | removed | kept MB (heap Δ + guard arrays) |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [label, spec] of SETS) {
  const held = resolveHeldout({ ...NO_HELDOUT, ...spec }, reader, label);
  const before = heap();
  const guard = new Contamination(reader, held);
  const t0 = performance.now();
  let removed = 0;
  for (const t of reader.tasks) {
    if (held.tasks.has(t.id)) continue;
    for (const [shard, local] of t.runs[0] ?? [])
      for (const row of reader.list(shard, local, 0)) if (guard.excluded(shard, row)) removed++;
  }
  const classify = performance.now() - t0;
  const kept = Math.max(0, heap() - before) + guard.arrayBytes;
  const c = guard.cost;
  console.log(
    `| ${label} | ${c.heldoutRecords.toLocaleString('en-US')} | ${c.heldoutClips.toLocaleString('en-US')} | ${c.ngrams.toLocaleString('en-US')} | ${c.buildMs.toFixed(0)} | ${classify.toFixed(0)} | ${removed.toLocaleString('en-US')} | ${mb(kept)} |`,
  );
}
reader.close();
