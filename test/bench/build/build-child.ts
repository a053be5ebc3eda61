/**
 * One run of the in-process build benchmark (build-bench.ts), for the source tree at --root: a
 * DataServiceCore over <index> (that tree's code, imported from it), and for every case a train
 * stream's session.next() plus the wire encoding, --batches batches after a warm-up. Importing by
 * root lets one run compare two builds (this tree and a worktree of an older commit) side by side.
 * Prints one JSON line: {case: {batches, tokens, seconds, cpuSeconds}}. --profile FILE writes a CPU profile
 * (100 µs sampling) of the measured loops only, for `node --cpu-prof`-style analysis. --plan times
 * the planning alone (sampler, walker, locating, fitting and packing the rows of each step, no
 * tokens, no encoding) and adds `examples`: planning's share of a batch, and its cost per example.
 *   npx tsx test/bench/build/build-child.ts --root DIR --index DIR [--batches 200] [--cases a,b] [--profile F] [--plan]
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILD_CASES } from './build-cases.js';

const flag = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const root = flag('root', process.cwd());
const index = flag('index', '');
const batches = Number(flag('batches', '200'));
const wanted = flag('cases', Object.keys(BUILD_CASES).join(',')).split(',');
const from = async <T>(file: string): Promise<T> => (await import(pathToFileURL(join(root, file)).href)) as T;

type Msg = { batch?: { tokens: Uint8Array } } | undefined;
/** The train planner, reached inside the session: `init.plan.planner` in older builds, `plan.planner` (a TrainPlan's) since plans are strategies. */
interface Planner {
  beginStep(step: number): void;
  planRows(rows: number): { turns: unknown[] }[][];
}
interface Core {
  open(raw: unknown): { next(): Msg; init?: { plan?: { planner?: Planner } }; plan?: { planner?: Planner } };
}
const { coreSettings } = await from<{ coreSettings: (c: unknown) => unknown }>('src/config/core-settings.ts');
const { loadConfig } = await from<{
  loadConfig: (f: undefined, o: Record<string, string>, e: Record<string, string>) => unknown;
}>('src/config/load-config.ts');
const { DataServiceCore } = await from<{ DataServiceCore: { open(dir: string, s: unknown): Promise<Core> } }>(
  'src/stream/data-service-core.ts',
);
const { encodeStreamResponse } = await from<{ encodeStreamResponse: (m: unknown) => Buffer }>(
  'src/server/response-encoder.ts',
);
const core = await DataServiceCore.open(index, coreSettings(loadConfig(undefined, { 'index.dir': index }, {})));

const planOnly = process.argv.includes('--plan');

/** Wall seconds, and CPU seconds of this process (steadier than wall time on a shared machine). */
function run(
  name: string,
  n: number,
  seed: number,
): { batches: number; tokens: number; seconds: number; cpuSeconds: number; examples?: number } {
  const spec = { split: 'train', batchSize: 8, seqLen: 4096, seed, ...BUILD_CASES[name] };
  const session = core.open({ spec });
  let tokens = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const planner = planOnly ? (session.plan?.planner ?? session.init?.plan?.planner) : undefined;
  if (planOnly && !planner) throw new Error(`${root}: this build's session has no plan.planner to time alone`);
  let examples = 0;
  for (let i = 0; planner && i < n; i++) {
    planner.beginStep(i);
    for (const row of planner.planRows(spec.batchSize)) for (const unit of row) examples += unit.turns.length;
  }
  for (let i = 0; !planner && i < n; i++) {
    const m = session.next();
    if (!m?.batch) throw new Error(`${name}: the train stream ended`);
    encodeStreamResponse(m);
    tokens += m.batch.tokens.byteLength / 4;
  }
  const used = process.cpuUsage(cpu);
  return {
    batches: n,
    tokens,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    ...(planner ? { examples } : {}),
  };
}

const out: Record<string, unknown> = {};
for (const name of wanted) run(name, 20, 99); // page cache and JIT
const profile = flag('profile', '');
const inspector = profile ? new Session() : undefined;
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
  await inspector.post('Profiler.start');
}
for (const name of wanted) out[name] = run(name, batches, 0);
if (inspector) writeFileSync(profile, JSON.stringify((await inspector.post('Profiler.stop')).profile));
console.log(JSON.stringify(out));
