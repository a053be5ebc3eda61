/**
 * The Python client's decode alone, per packing mode and audio layout: CPU µs per 8 × 4096 batch
 * of `BatchDecoder` on batches recorded once from a real server (test/bench/stream/decode.py).
 * On 2 shared cores the client's decode competes with the server's build for the cores, so this
 * is the client's share of every delivered batch. With --baseline DIR (a source tree of an older
 * commit: `git archive <commit> | tar -x -C DIR`; only its clients/python is used) both clients
 * decode the same recorded batches, alternating run by run in fresh processes: "× baseline" is a
 * same-run ratio. "+ segments read" also reads every batch's `segments`. The TypeScript client's
 * columns (this tree only, stream/ts-decode.ts): proto-loader deserialization and `BatchDecoder.decode`.
 *   npx tsx test/bench/stream-decode-bench.ts [--runs 5] [--batches 200] [--records 20000] [--baseline DIR] [--output numpy|torch]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, benchIndex, PYTHON, ROOT, startServerChild, stats, stopChild, textArg } from './bench-util.js';

const runs = arg('runs', 5);
const batches = arg('batches', 200);
const baseline = textArg('baseline');
const output = textArg('output') ?? 'numpy';
const index = benchIndex(arg('records', 20000));

const CASES: [string, string[]][] = [
  ['packed', ['--packing', 'packed']],
  ['none', ['--packing', 'none']],
  ['multiturn', ['--packing', 'multiturn']],
  ['flat k=1', ['--packing', 'packed', '--layout', 'flat', '--codebooks', '1']],
  ['delay k=all', ['--packing', 'packed', '--layout', 'delay', '--codebooks', '0']],
  ['delay k=1', ['--packing', 'packed', '--layout', 'delay', '--codebooks', '1']],
];

function python(args: string[]): string {
  const r = spawnSync(PYTHON, ['test/bench/stream/decode.py', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`decode.py ${args.join(' ')} exited ${r.status}`);
  return r.stdout;
}

const dir = mkdtempSync(join(tmpdir(), 'flanstream-decode-'));
const loadStart = loadavg()[0]!.toFixed(2);
const server = await startServerChild(index);
const target = `127.0.0.1:${server.info.port}`;
for (const [name, args] of CASES)
  python(['record', target, join(dir, `${name}.bin`), ...args, '--batches', String(batches)]);
await stopChild(server.child);

type Row = { us: number[]; tokens: number; segments: number };
const clients: [string, string][] = [['this', ROOT], ...(baseline ? [['baseline', baseline] as [string, string]] : [])];
const results = new Map<string, Row>();
const add = (key: string, out: string): void => {
  const r = JSON.parse(out) as { us_per_batch: number[]; tokens: number; segments: number };
  const row = results.get(key) ?? { us: [], tokens: r.tokens, segments: r.segments };
  row.us.push(Math.min(...r.us_per_batch)); // best of a process's passes: the least disturbed by other load
  results.set(key, row);
};
const ts = new Map<string, { des: number[]; dec: number[] }>();
for (let run = 0; run < runs; run++) {
  for (const [name] of CASES) {
    const file = join(dir, `${name}.bin`);
    const t = spawnSync(process.execPath, ['--import', 'tsx', 'test/bench/stream/ts-decode.ts', file, '--reps', '3'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (t.status !== 0) throw new Error(`ts-decode.ts ${name} exited ${t.status}`);
    const got = JSON.parse(t.stdout) as { deserialize_us: number; decode_us: number };
    const row = ts.get(name) ?? { des: [], dec: [] };
    row.des.push(got.deserialize_us);
    row.dec.push(got.decode_us);
    ts.set(name, row);
    for (const [who, root] of clients) {
      add(`${who}:${name}`, python(['time', file, '--client', root, '--output', output, '--reps', '3']));
      add(
        `${who}+read:${name}`,
        python(['time', file, '--client', root, '--output', output, '--reps', '3', '--read-segments']),
      );
    }
  }
}
rmSync(dir, { recursive: true, force: true });

const med = (key: string): number => stats(results.get(key)!.us).median;
const base = baseline ? ' baseline µs | × baseline (CPU per batch) | baseline + segments read µs |' : '';
console.log(
  `Python client decode, output ${output}, CPU µs per batch (median of ${runs} runs; min–max), load average ${loadStart} → ${loadavg()[0]!.toFixed(2)}\n`,
);
console.log(
  `| case | tokens/batch | segments/batch | µs per batch | min–max | + segments read µs |${base} TS client: deserialize µs | TS client: decode µs |`,
);
console.log(`|---|---:|---:|---:|---|---:|${baseline ? '---:|---:|---:|' : ''}---:|---:|`);
for (const [name] of CASES) {
  const r = results.get(`this:${name}`)!;
  const s = stats(r.us);
  const cols = baseline
    ? ` ${med(`baseline:${name}`).toFixed(0)} | ${(med(`baseline:${name}`) / s.median).toFixed(2)} | ${med(`baseline+read:${name}`).toFixed(0)} |`
    : '';
  const t = ts.get(name)!;
  const tsCols = ` ${stats(t.des).median.toFixed(0)} | ${stats(t.dec).median.toFixed(0)} |`;
  console.log(
    `| ${name} | ${r.tokens} | ${r.segments} | ${s.median.toFixed(0)} | ${s.min.toFixed(0)}–${s.max.toFixed(0)} | ${med(`this+read:${name}`).toFixed(0)} |${cols}${tsCols}`,
  );
}
