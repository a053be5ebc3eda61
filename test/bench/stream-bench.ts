/**
 * End-to-end delivery: tokens/s into numpy arrays and torch tensors in the Python client, batches
 * of 8 × 4096 packed, side by side in one run with a hand-written Python JSONL loader over the same
 * pre-tokenized examples, the bare gRPC transport ceiling and the raw loopback socket ceiling.
 * 1 consumer and --consumers concurrent consumers (ranks of one job). Medians of --runs runs.
 *   npx tsx test/bench/stream-bench.ts [--runs 5] [--batches 300] [--records 20000] [--consumers 8]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { arg, benchIndex, fmtM, PYTHON, ROOT, startChild, stats, stopChild } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 300);
const consumers = arg('consumers', 8);
const index = benchIndex(arg('records', 20000));
const jsonl = join(index, '..', 'pretokenized.jsonl');
if (!existsSync(jsonl)) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/bench/stream/export-pretokenized.ts', index, jsonl, '20000'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('export of pre-tokenized examples failed');
}

const server = await startChild(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'serve', '--index', index, '--port', '0', '--http-port=-1']);
const ceilings = await startChild(process.execPath, ['--import', 'tsx', 'test/bench/stream/ceiling-servers.ts', String(8 * 4096 * 4)]);
const target = `127.0.0.1:${server.info.port}`;

function measure(args: string[]): Promise<{ tokens: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, ['test/bench/stream/measure.py', ...args, '--batches', String(batches)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { tokens: number; seconds: number }) : reject(new Error(`measure ${args.join(' ')} exited ${code}`))));
  });
}

/** n concurrent consumers; aggregate tokens/s = total tokens / slowest consumer's time. */
async function group(n: number, make: (rank: number) => string[]): Promise<number> {
  const rs = await Promise.all(Array.from({ length: n }, (_, r) => measure(make(r))));
  return rs.reduce((t, r) => t + r.tokens, 0) / Math.max(...rs.map((r) => r.seconds));
}

const cases: [string, () => Promise<number>][] = [
  ['flanstream → numpy (1 consumer)', () => group(1, () => ['flanstream', target, '--output', 'numpy'])],
  ['flanstream → torch (1 consumer)', () => group(1, () => ['flanstream', target, '--output', 'torch'])],
  ['plain Python JSONL loader → numpy', () => group(1, () => ['jsonl', jsonl, '--output', 'numpy'])],
  ['plain Python JSONL loader → torch', () => group(1, () => ['jsonl', jsonl, '--output', 'torch'])],
  ['bare grpc-js → grpcio (transport ceiling)', () => group(1, () => ['grpc', `127.0.0.1:${ceilings.info.grpcPort}`])],
  ['raw loopback socket (ceiling)', () => group(1, () => ['socket', String(ceilings.info.socketPort)])],
  [`flanstream → torch (${consumers} ranks)`, () => group(consumers, (r) => ['flanstream', target, '--output', 'torch', '--rank', String(r), '--world', String(consumers)])],
  [`plain Python JSONL loader → torch (${consumers} processes)`, () => group(consumers, () => ['jsonl', jsonl, '--output', 'torch'])],
];
const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, run] of cases) results.get(name)!.push(await run());
}
await stopChild(server.child);
await stopChild(ceilings.child);

const ref = stats(results.get(cases[0]![0])!).median;
console.log(`| source | tokens/s median | min | max | flanstream numpy ÷ this |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const [name] of cases) {
  const s = stats(results.get(name)!);
  console.log(`| ${name} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${(ref / s.median).toFixed(2)} |`);
}
console.log(`\n${runs} runs × ${batches} batches of 8 × 4096 (packed), real tokens only; machine: 2 cores, loopback.`);
