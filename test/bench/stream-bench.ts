/**
 * End-to-end delivery: tokens/s into numpy arrays and torch tensors in the Python client, batches
 * of 8 × 4096, side by side in one run with a hand-written Python JSONL loader over the same
 * pre-tokenized examples, every packing mode and audio layout, two gRPC transport ceilings (the
 * Batch message through proto-loader, and one `bytes` field serialized once: the true limit) and
 * the raw loopback socket. 1 consumer and --consumers concurrent consumers (ranks of one job).
 * Medians of --runs runs; cases interleaved run by run.
 *   npx tsx test/bench/stream-bench.ts [--runs 5] [--batches 300] [--records 20000] [--consumers 8]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { arg, benchIndex, fmtM, PYTHON, ROOT, startChild, startServerChild, stats, stopChild } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 300);
const consumers = arg('consumers', 8);
const index = benchIndex(arg('records', 20000));
const jsonl = join(index, '..', 'pretokenized.jsonl');
if (!existsSync(jsonl)) {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'test/bench/stream/export-pretokenized.ts', index, jsonl, '20000'],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (r.status !== 0) throw new Error('export of pre-tokenized examples failed');
}

const loadStart = loadavg()[0]!.toFixed(2);
const server = await startServerChild(index);
const ceilings = await startChild(process.execPath, [
  '--import',
  'tsx',
  'test/bench/stream/ceiling-servers.ts',
  String(8 * 4096 * 4),
]);
const target = `127.0.0.1:${server.info.port}`;

type Measured = { tokens: number; seconds: number; batches: number; cpu_seconds: number };
function measure(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, ['test/bench/stream/measure.py', ...args, '--batches', String(batches)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Measured) : reject(new Error(`measure ${args.join(' ')} exited ${code}`)),
    );
  });
}

/** Client CPU µs per batch of one-consumer rows (the measuring process: decode, prefetch, gRPC), by case name. */
const clientCpu = new Map<string, number[]>();
let current = '';

/** n concurrent consumers; aggregate tokens/s = total tokens / slowest consumer's time. */
async function group(n: number, make: (rank: number) => string[]): Promise<number> {
  const rs = await Promise.all(Array.from({ length: n }, (_, r) => measure(make(r))));
  if (n === 1 && rs[0]!.cpu_seconds > 0)
    clientCpu.set(current, [...(clientCpu.get(current) ?? []), (rs[0]!.cpu_seconds / rs[0]!.batches) * 1e6]);
  return rs.reduce((t, r) => t + r.tokens, 0) / Math.max(...rs.map((r) => r.seconds));
}

const one =
  (...args: string[]) =>
  () =>
    group(1, () => ['flanstream', target, ...args]);
const PACKED = 'flanstream → numpy (1 consumer)';
const BATCH_CEILING = 'bare grpc-js → grpcio, Batch message via proto-loader (old ceiling)';
const BYTES_CEILING = 'bare grpc-js → grpcio, one `bytes` field (transport ceiling)';
const cases: [string, () => Promise<number>][] = [
  [PACKED, one('--output', 'numpy')],
  ['flanstream → torch (1 consumer)', one('--output', 'torch')],
  ['flanstream → numpy, packing none', one('--output', 'numpy', '--packing', 'none')],
  ['flanstream → numpy, packing multiturn', one('--output', 'numpy', '--packing', 'multiturn')],
  ['flanstream → numpy, audio flat, codebooks 1', one('--output', 'numpy', '--layout', 'flat', '--codebooks', '1')],
  ['flanstream → numpy, audio delay, all codebooks', one('--output', 'numpy', '--layout', 'delay', '--codebooks', '0')],
  ['flanstream → numpy, audio delay, codebooks 1', one('--output', 'numpy', '--layout', 'delay', '--codebooks', '1')],
  ['plain Python JSONL loader → numpy', () => group(1, () => ['jsonl', jsonl, '--output', 'numpy'])],
  ['plain Python JSONL loader → torch', () => group(1, () => ['jsonl', jsonl, '--output', 'torch'])],
  [BATCH_CEILING, () => group(1, () => ['grpc', `127.0.0.1:${ceilings.info.grpcPort}`])],
  [BYTES_CEILING, () => group(1, () => ['bytes', `127.0.0.1:${ceilings.info.bytesPort}`])],
  ['raw loopback socket (ceiling)', () => group(1, () => ['socket', String(ceilings.info.socketPort)])],
  [
    `flanstream → torch (${consumers} ranks)`,
    () =>
      group(consumers, (r) => [
        'flanstream',
        target,
        '--output',
        'torch',
        '--rank',
        String(r),
        '--world',
        String(consumers),
      ]),
  ],
  [
    `plain Python JSONL loader → torch (${consumers} processes)`,
    () => group(consumers, () => ['jsonl', jsonl, '--output', 'torch']),
  ],
];
const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, run] of cases) {
    current = name;
    results.get(name)!.push(await run());
  }
}
await stopChild(server.child);
await stopChild(ceilings.child);

const median = (name: string): number => stats(results.get(name)!).median;
const ref = median(PACKED);
console.log(
  `| source | tokens/s median | min | max | flanstream numpy (packed) ÷ this | this ÷ packed | client CPU µs per batch |`,
);
console.log(`|---|---:|---:|---:|---:|---:|---:|`);
for (const [name] of cases) {
  const s = stats(results.get(name)!);
  console.log(
    `| ${name} | ${fmtM(s.median)} | ${fmtM(s.min)} | ${fmtM(s.max)} | ${(ref / s.median).toFixed(2)} | ${(s.median / ref).toFixed(2)} | ${clientCpu.has(name) ? stats(clientCpu.get(name)!).median.toFixed(0) : ''} |`,
  );
}
const [bytesLimit, batchLimit] = [median(BYTES_CEILING), median(BATCH_CEILING)];
const truest = bytesLimit >= batchLimit ? BYTES_CEILING : BATCH_CEILING;
console.log(
  `\nTrue gRPC transport limit in this run: "${truest}" (${fmtM(Math.max(bytesLimit, batchLimit))} tokens/s; the one-bytes-field ceiling is ${(bytesLimit / batchLimit).toFixed(2)}× the Batch-message one); flanstream packed reaches ${((100 * ref) / Math.max(bytesLimit, batchLimit)).toFixed(0)} % of it.`,
);
console.log(
  `${runs} runs × ${batches} batches of 8 × 4096 (packed unless named), real tokens only; load average at the start ${loadStart}, at the end ${loadavg()[0]!.toFixed(2)}; machine: ${cpus().length} cores, loopback.`,
);
