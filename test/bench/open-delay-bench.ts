/**
 * `npm run bench -- opendelay [--records N] [--runs R] [--mode sync|async|both] [--step]`: the worst
 * event-loop delay while a stream opens with an inline held-out set that scans (text n-grams and
 * shared audio: its guard, then every train record classified for the train sizes), on the sample
 * corpus of N records (default 200,000). `sync` opens in one piece (core.open, what tools do); `async` as the server does (core.openAsync: a sliced scan between event-loop
 * turns, pages made resident before they are read). Each run opens a held-out set not seen
 * before (its own n), so each scans. With `--step`, also the worst delay while one stream at the
 * largest step the default limits allow (server.max_step_tokens) plans and builds its first batches.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawOpen } from '../../src/stream/stream-request.js';
import { arg, benchIndex, stats, textArg } from './bench-util.js';

const median = (xs: readonly number[]): number => stats(xs).median;

const records = arg('records', 200_000);
const runs = arg('runs', 3);
const argv = process.argv.slice(2);
const mode = textArg('mode') ?? 'both';
const index = benchIndex(records);
const settings = coreSettings(loadConfig(undefined, { 'index.dir': index }, {}));

/** Runs `fn` while sampling the event loop; its worst delay (ms) and wall time (ms). */
async function watched(fn: () => Promise<unknown>): Promise<{ worst: number; ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A timer that must fire every ms also catches a block the histogram's own timer straddles.
  let last = performance.now();
  let worst = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  h.enable();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 5));
  await fn();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  h.disable();
  clearInterval(tick);
  return { worst: Math.max(worst, h.max / 1e6), ms };
}

const task = (core: DataServiceCore): string =>
  core.catalog.reader.tasks
    .filter((t) => !t.unseen && t.domain === 'speech')
    .sort((a, b) => b.counts[0] - a.counts[0])[0]!.path;
const open = (core: DataServiceCore, n: number): RawOpen => ({
  spec: {
    split: 'train',
    batchSize: 8,
    seqLen: 4096,
    packing: 'packed',
    heldout: { inline: true, selectors: [task(core)], excludeOverlappingText: n, excludeSharedAudio: true },
  },
});

console.log(
  `${records.toLocaleString('en-US')} records; ${runs} runs per mode, each a fresh catalog and a new held-out set\n`,
);
console.log('| open | worst event-loop delay ms (median) | runs | open ms (median) |');
console.log('|---|---:|---|---:|');
for (const m of mode === 'both' ? ['sync', 'async'] : [mode]) {
  const worst: number[] = [];
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const core = await DataServiceCore.open(index, settings);
    const raw = open(core, 8 + r);
    const w = await watched(async () => {
      const s = m === 'sync' ? core.open(raw) : await core.openAsync(raw);
      s.close();
    });
    worst.push(w.worst);
    ms.push(w.ms);
    core.catalog.close();
  }
  console.log(
    `| ${m} | ${median(worst).toFixed(0)} | ${worst.map((x) => x.toFixed(0)).join(', ')} | ${median(ms).toFixed(0)} |`,
  );
}

// The same watch over an idle loop as long as the last open: what the machine's load alone gives.
const idle = await watched(() => new Promise((r) => setTimeout(r, 3000)));
console.log(`| (idle, 3 s) | ${idle.worst.toFixed(0)} | | |`);

if (argv.includes('--step')) {
  // The largest step: world_size × batch_size × seq_len = server.max_step_tokens (2^28).
  const core = await DataServiceCore.open(index, settings);
  const raw: RawOpen = { spec: { split: 'train', batchSize: 128, seqLen: 8192, worldSize: 256, packing: 'packed' } };
  const s = await core.openAsync(raw);
  const pause = (): Promise<void> => new Promise((r) => setImmediate(r));
  const w = await watched(async () => {
    for (let b = 0; b < 2; b++) await s.nextAsync(pause);
  });
  console.log(
    `\nlargest step (256 x 128 x 8192 tokens), 2 steps planned and rank 0's batches built: worst event-loop delay ${w.worst.toFixed(0)} ms over ${(w.ms / 1000).toFixed(1)} s`,
  );
  s.close();
  core.catalog.close();
}
