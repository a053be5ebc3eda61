/**
 * Audio layouts: served tokens/s of a train stream (8 × 4096, packed) under `flat` over all
 * codebooks (the stored form, read as is), `flat` over 1 codebook, `delay` over all and over 1
 * codebook, in the same run, cases interleaved run by run: StreamSession.next() (planning, token
 * copy with the layout's re-arrangement, batch columns) plus the wire encoding of the response.
 * Medians of --runs runs of --batches batches. Target: every layout within 10 % of flat.
 *   npx tsx test/bench/layout-bench.ts [--runs 5] [--batches 150] [--records 20000]
 */
import { encodeStreamResponse } from '../../src/server/response-encoder.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { arg, benchIndex, fmtM, stats } from './bench-util.js';
import { openCore } from './stream/open-core.js';

const runs = arg('runs', 5);
const batches = arg('batches', 150);
const core: DataServiceCore = await openCore(benchIndex(arg('records', 20_000)));
const q = core.catalog.reader.manifest.vocab.codebooks;

const cases: [string, { codebooks: number; layout: string } | undefined][] = [
  [`flat, all ${q} codebooks (default)`, undefined],
  ['flat, codebooks: 1', { codebooks: 1, layout: 'flat' }],
  [`delay, all ${q} codebooks`, { codebooks: 0, layout: 'delay' }],
  ['delay, codebooks: 1', { codebooks: 1, layout: 'delay' }],
];

function run(
  audio: (typeof cases)[number][1],
  seed: number,
): { tokensPerSecond: number; examplesPerSecond: number; audioShare: number } {
  const session = core.open({ spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed, audio } });
  let tokens = 0;
  let audioTokens = 0;
  let examples = 0;
  const started = performance.now();
  for (let i = 0; i < batches; i++) {
    const m = session.next();
    if (!m || !('batch' in m)) throw new Error('train stream ended');
    encodeStreamResponse(m);
    tokens += m.batch.tokens.byteLength / 4;
    audioTokens += m.batch.segAudioTokens.reduce((a, b) => a + b, 0);
    examples += m.batch.uuids.length;
  }
  const seconds = (performance.now() - started) / 1000;
  return { tokensPerSecond: tokens / seconds, examplesPerSecond: examples / seconds, audioShare: audioTokens / tokens };
}

run(undefined, 99); // warm the page cache and the JIT
const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
const perExample = new Map<string, number[]>(cases.map(([name]) => [name, []]));
const shares = new Map<string, number>();
for (let r = 0; r < runs; r++) {
  for (const [name, audio] of cases) {
    const { tokensPerSecond, examplesPerSecond, audioShare } = run(audio, r);
    results.get(name)!.push(tokensPerSecond);
    perExample.get(name)!.push(examplesPerSecond);
    shares.set(name, audioShare);
  }
}

const ref = stats(results.get(cases[0]![0])!).median;
const refEx = stats(perExample.get(cases[0]![0])!).median;
console.log(
  '| layout | served tokens/s median | min | max | ÷ flat (all) | examples/s median | ÷ flat (all) | audio share of tokens |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name] of cases) {
  const s = stats(results.get(name)!);
  const e = stats(perExample.get(name)!).median;
  console.log(
    `| ${name} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${(s.median / ref).toFixed(2)} | ${e.toFixed(0)} | ${(e / refEx).toFixed(2)} | ${((shares.get(name) ?? 0) * 100).toFixed(0)} % |`,
  );
}
console.log(
  `\n${runs} runs × ${batches} batches of 8 × 4096 (packed), in process (StreamSession.next + wire encoding); machine: 2 cores.`,
);
