/**
 * Horizontal scale (issue 9.5): N stateless replicas — separate server processes on separate
 * ports over the same index — serving the ranks of one job, rank r on replica r mod N.
 *   1. Exactness: every rank's batches (sha1 of its dense tensors, from the real Python client)
 *      equal the single-server W = 1 stream at global step s·W + r.
 *   2. Throughput: aggregate tokens/s of the W ranks (concurrent Python consumers, torch output)
 *      with 1 and with 2 replicas, medians of --runs runs, side by side in one run.
 *   npx tsx test/bench/replicas-bench.ts [--runs 5] [--batches 200] [--ranks 4] [--records 20000]
 */
import { spawn } from 'node:child_process';
import { arg, benchIndex, fmtM, PYTHON, ROOT, startServerChild, stats, stopChild } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 200);
const W = arg('ranks', 4);
const verifyBatches = arg('verify-batches', 40);
const index = benchIndex(arg('records', 20000));

function python<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, ['test/bench/stream/measure.py', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`measure.py ${args.join(' ')} exited ${code}`)),
    );
  });
}

const replicas = await Promise.all([0, 1].map(() => startServerChild(index)));
const targets = replicas.map((r) => `127.0.0.1:${r.info.port}`);
const on = (n: number, rank: number): string => targets[rank % n]!;

// 1. Exactness against the single-server W = 1 stream.
const ref = (await python<{ digests: string[] }>(['digests', targets[0]!, '--batches', String(W * verifyBatches)]))
  .digests;
const verified: string[] = [];
for (const n of [1, 2]) {
  const ranks = await Promise.all(
    Array.from({ length: W }, (_, r) =>
      python<{ digests: string[] }>([
        'digests',
        on(n, r),
        '--rank',
        String(r),
        '--world',
        String(W),
        '--batches',
        String(verifyBatches),
      ]),
    ),
  );
  ranks.forEach(({ digests }, r) =>
    digests.forEach((d, s) => {
      if (d !== ref[s * W + r])
        throw new Error(`${n} replica(s): rank ${r} step ${s} differs from the W=1 stream at step ${s * W + r}`);
    }),
  );
  verified.push(`${n} replica(s): ${W} ranks × ${verifyBatches} batches equal the W=1 stream`);
}

// 2. Aggregate throughput: total real tokens / slowest rank's time.
async function aggregate(n: number): Promise<number> {
  const rs = await Promise.all(
    Array.from({ length: W }, (_, r) =>
      python<{ tokens: number; seconds: number }>([
        'flanstream',
        on(n, r),
        '--output',
        'torch',
        '--rank',
        String(r),
        '--world',
        String(W),
        '--batches',
        String(batches),
      ]),
    ),
  );
  return rs.reduce((t, r) => t + r.tokens, 0) / Math.max(...rs.map((r) => r.seconds));
}
const results: Record<number, number[]> = { 1: [], 2: [] };
for (let i = 0; i < runs; i++) for (const n of [1, 2]) results[n]!.push(await aggregate(n));
await Promise.all(replicas.map((r) => stopChild(r.child)));

const one = stats(results[1]!).median;
console.log(verified.map((v) => `* ${v}`).join('\n'));
console.log(`\n| replicas | ${W} ranks, tokens/s median | min | max | ÷ 1 replica |`);
console.log('|---:|---:|---:|---:|---:|');
for (const n of [1, 2]) {
  const s = stats(results[n]!);
  console.log(`| ${n} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${(s.median / one).toFixed(2)} |`);
}
console.log(
  `\n${runs} runs × ${batches} batches of 8 × 4096 (packed) per rank, torch output; all processes on one 2-core machine, so two replicas share the same two cores.`,
);
