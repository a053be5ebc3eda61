/**
 * Soak variant of the load test: `npx tsx test/reliability/soak.ts --minutes 5 [--index DIR]`
 * (or `npm run soak -- --minutes 5`). Without --index it builds the 3,000-record sample index in
 * a temporary directory. Alongside the 64 active readers: 256 idle streams (--idle N; clients that
 * never read) and the forged-token fuzzer; it reports RSS, fds and the worst event-loop delay.
 * Then, each on its own server (soak-connections.ts): calls ended every way a raw HTTP/2 client
 * can (--call-end-rounds N, 20) and a flood of silent TCP connections (--idle-connections N, 20,000)
 * while health and /healthz are polled.
 * Exits 1 on any of loadProblems: a stall, an error (a fuzzer call unanswered or INTERNAL), a step gap, streams or
 * connections left open, or RSS growing more than 160 MB (or 60 %) above its warmed-up value.
 * Then a rare-fit phase (rare-fit-soak.ts): its worst event-loop delay, RSS and fds. Then a
 * planning-budget phase (plan-budget-soak.ts, --plan-streams N, 16): streams at the largest step
 * the server allows, admitted within server.plan_budget_bytes and refused beyond it; peak RSS,
 * refusals, fds and the worst event-loop delay.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { describeLoad, loadProblems, runLoad } from './load-run.js';
import { callEndsPhase, idleConnectionsPhase } from './soak-connections.js';
import { describeRareFit, rareFitSoak } from './rare-fit-soak.js';
import { describePlanBudget, planBudgetSoak } from './plan-budget-soak.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    index: { type: 'string' },
    streams: { type: 'string', default: '64' },
    idle: { type: 'string', default: '256' },
    'call-end-rounds': { type: 'string', default: '20' },
    'idle-connections': { type: 'string', default: '20000' },
    'plan-streams': { type: 'string', default: '16' },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
let tmp: string | undefined;
let index = values.index;
if (!index) {
  tmp = mkdtempSync(join(tmpdir(), 'flanstream-soak-'));
  await writeSampleCorpus(join(tmp, 'corpus'), { records: 3000, seed: 0 });
  await buildIndex({
    corpus: join(tmp, 'corpus'),
    out: join(tmp, 'index'),
    workers: 1,
    audioRoots: [SAMPLE_AUDIO_ROOT],
  });
  index = join(tmp, 'index');
}
try {
  // Besides the 64 active readers: 256 streams that never read and the token fuzzer.
  const r = await runLoad(index, {
    durationMs: minutes * 60_000,
    streams: Number(values.streams),
    idle: Number(values.idle),
    fuzz: true,
    log: (s) => console.log(s),
  });
  console.log(describeLoad(r));
  const problems = loadProblems(r);
  // Transport phases, each on its own server: calls ended every way, then a silent-connection flood.
  for (const phase of [
    await callEndsPhase(index, Number(values['call-end-rounds']), (s) => console.log(s)),
    await idleConnectionsPhase(index, Number(values['idle-connections']), (s) => console.log(s)),
  ]) {
    for (const line of phase.lines) console.log(line);
    problems.push(...phase.problems);
  }
  // Rare-fit streams (a few records of a big task fit) must not hold the event loop.
  const rare = await rareFitSoak(index, Math.min(60_000, minutes * 12_000));
  console.log(describeRareFit(rare));
  problems.push(...rare.problems);
  // Streams at the largest step: the planning budget admits a few, refuses the rest, RSS stays bounded.
  const plans = await planBudgetSoak(index, Math.min(60_000, minutes * 12_000), Number(values['plan-streams']));
  console.log(describePlanBudget(plans));
  problems.push(...plans.problems);
  for (const p of problems) console.error(`FAIL ${p}`);
  process.exitCode = problems.length ? 1 : 0;
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
