/**
 * Closed-loop reweighting overhead (README, "Closed-loop reweighting"): a trainer reporting its per-task losses
 * every step against one that does not.
 *  1. Server time per step, in process (no transport): planning and building a step (session.next)
 *     and handling its report (checking it, the policy's decision, re-resolving the mixture), for a
 *     static stream without reports, a static stream with reports, and odm / excess-loss streams
 *     with reports. 8 × 4096 packed. Medians of --runs runs of --steps steps.
 *  2. End to end, tokens/s into the Python client: a static stream read as fast as possible
 *     against an odm stream whose every batch is turned into per-task losses (task_losses over a
 *     [B, L] loss) and reported (report_losses). Alternating runs, medians.
 *   npx tsx test/bench/closed-loop-bench.ts [--runs 5] [--steps 300] [--batches 200] [--records 20000]
 */
import { spawn } from 'node:child_process';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture } from '../../src/stream/stream-request.js';
import { arg, benchIndex, fmtM, PYTHON, ROOT, startServerChild, stats, stopChild } from './bench-util.js';

const runs = arg('runs', 5);
const steps = arg('steps', 300);
const batches = arg('batches', 200);
const index = benchIndex(arg('records', 20000));
const core = await DataServiceCore.open(index, coreSettings(loadConfig(undefined, { 'index.dir': index }, {})));

const WEIGHTS = { speech: 0.5, music: 0.25, audio: 0.25 };
/** Name, mixture, what is reported every step: nothing, per-task losses, or an empty report. */
const variants: [string, RawMixture, 'none' | 'losses' | 'empty'][] = [
  ['static, no reports', { weights: WEIGHTS }, 'none'],
  ['static, losses reported every step', { weights: WEIGHTS }, 'losses'],
  // The same rows as the first (no decision ever changes the weights): the loop's own cost.
  ['odm, empty report every step (gated, no decisions)', { weights: WEIGHTS, policy: 'odm', lagSteps: 8 }, 'empty'],
  // A decision every step: the served mixture (and so the rows planned) moves away from the first.
  ['odm, losses reported every step', { weights: WEIGHTS, policy: 'odm', lagSteps: 8 }, 'losses'],
  [
    'excess-loss, losses reported every step',
    { weights: WEIGHTS, policy: 'excess-loss', lagSteps: 8, reference: { speech: 1, music: 1, audio: 1 } },
    'losses',
  ],
];

/** CPU microseconds (user + system) from `a` to `b`: unlike wall time, not inflated by other processes on a shared machine. */
const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => b.user - a.user + (b.system - a.system);

/** CPU microseconds per step: building it, and handling its report. */
function serverRun(mixture: RawMixture, report: 'none' | 'losses' | 'empty'): { plan: number; report: number } {
  const s = core.open({ spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 0, mixture } });
  let plan = 0;
  let handle = 0;
  for (let k = 0; k < steps + 10; k++) {
    const t0 = process.cpuUsage();
    const m = s.next();
    const t1 = process.cpuUsage();
    if (!m || !('batch' in m)) throw new Error(`stream stalled at step ${k}`);
    if (report !== 'none') {
      const per = new Map<number, number>();
      if (report === 'losses') for (const t of m.batch.turnTask) per.set(t, (per.get(t) ?? 0) + 100);
      const raw = {
        step: m.batch.step,
        losses: [...per].map(([task, tokens]) => ({ task, tokens, lossSum: tokens * (2 + (task % 3)) })),
      };
      const t2 = process.cpuUsage();
      s.addReport(core.lossReport(raw, s.heldout));
      if (k >= 10) handle += cpu(t2, process.cpuUsage());
    }
    if (k >= 10) plan += cpu(t0, t1);
  }
  return { plan: plan / steps, report: handle / steps };
}

const server = new Map<string, { plan: number[]; report: number[] }>(
  variants.map(([n]) => [n, { plan: [], report: [] }]),
);
// One uncounted round warms the JIT and the index page cache; then each round starts with
// another variant, so none is always first.
for (let r = -1; r < runs; r++) {
  for (let v = 0; v < variants.length; v++) {
    const [name, mixture, report] = variants[(v + Math.max(r, 0)) % variants.length]!;
    const got = serverRun(mixture, report);
    if (r < 0) continue;
    server.get(name)!.plan.push(got.plan);
    server.get(name)!.report.push(got.report);
  }
}
const base = stats(server.get(variants[0]![0])!.plan).median;
console.log(`Server CPU time per step (8 × 4096 packed, ${steps} steps, median of ${runs} runs):\n`);
console.log('| stream | plan + build µs/step (min–max) | report handling µs/step | total vs static without reports |');
console.log('|---|---|---|---|');
for (const [name] of variants) {
  const p = stats(server.get(name)!.plan);
  const h = stats(server.get(name)!.report);
  const pct = ((p.median + h.median) / base - 1) * 100;
  console.log(
    `| ${name} | ${p.median.toFixed(0)} (${p.min.toFixed(0)}–${p.max.toFixed(0)}) | ${h.median.toFixed(1)} | ${pct >= 0 ? '+' : ''}${pct.toFixed(2)} % |`,
  );
}

const child = await startServerChild(index);
const target = `127.0.0.1:${child.info.port}`;
function measure(extra: string[]): Promise<{ tps: number; cpuPerBatch: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      PYTHON,
      [
        'test/bench/stream/measure.py',
        'flanstream',
        target,
        '--batches',
        String(batches),
        '--output',
        'torch',
        ...extra,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`measure exited ${code}`));
      const r = JSON.parse(out) as { tokens: number; seconds: number; cpu_seconds: number };
      resolve({ tps: r.tokens / r.seconds, cpuPerBatch: (r.cpu_seconds * 1e6) / batches });
    });
  });
}
const e2e = {
  plain: { tps: [] as number[], cpu: [] as number[] },
  report: { tps: [] as number[], cpu: [] as number[] },
};
for (let r = 0; r < runs; r++) {
  for (const [k, extra] of [
    ['plain', []],
    ['report', ['--report']],
  ] as const) {
    const m = await measure([...extra]);
    e2e[k].tps.push(m.tps);
    e2e[k].cpu.push(m.cpuPerBatch);
  }
}
await stopChild(child.child);
const row = (name: string, v: { tps: number[]; cpu: number[] }, ref?: { tps: number[]; cpu: number[] }): string => {
  const t = stats(v.tps);
  const c = stats(v.cpu).median;
  const vs = (x: number, y: number): string => `${x / y - 1 >= 0 ? '+' : ''}${((x / y - 1) * 100).toFixed(2)} %`;
  return `| ${name} | ${fmtM(t.median)} (${fmtM(t.min)}–${fmtM(t.max)}) | ${ref ? vs(t.median, stats(ref.tps).median) : '–'} | ${c.toFixed(0)} | ${ref ? vs(c, stats(ref.cpu).median) : '–'} |`;
};
console.log(
  `\nEnd to end into torch tensors (Python client, ${batches} batches of 8 × 4096, median of ${runs} alternating runs):\n`,
);
console.log('| client loop | tokens/s median (min–max) | vs static | client CPU µs/batch | vs static |');
console.log('|---|---|---|---|---|');
console.log(row('static stream, no reports', e2e.plain));
console.log(row('odm stream, task_losses + report_losses every step', e2e.report, e2e.plain));
