/**
 * Batch-building and send-path throughput, for CPU profiling:
 *   node --cpu-prof --import tsx test/bench/profile-batches.ts <index> packed|multiturn|grpc [--batches 2000]
 * packed / multiturn: in-process DataServiceCore, session.next() N times (8 × 4096, train).
 * grpc: an in-process server (test/helpers/test-server.ts) and a raw grpc-js client in the same
 * process reading N packed batches. Prints one JSON line: batches/s after the first batch.
 * --profile <file.cpuprofile> writes a CPU profile of the measured loop only (no startup).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import { startTestServer } from '../helpers/test-server.js';

const [index = '', mode = 'packed'] = process.argv.slice(2);
const i = process.argv.indexOf('--batches');
const n = i >= 0 ? Number(process.argv[i + 1]) : 2000;
const pi = process.argv.indexOf('--profile');
const profileFile = pi >= 0 ? process.argv[pi + 1] : undefined;
const inspector = profileFile ? new Session() : undefined;
async function startProfile(): Promise<void> {
  if (!inspector) return;
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
  await inspector.post('Profiler.start');
}
async function stopProfile(): Promise<void> {
  if (!inspector || !profileFile) return;
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(profileFile, JSON.stringify(profile));
}
const spec = {
  split: 'train',
  batchSize: 8,
  seqLen: 4096,
  packing: mode === 'multiturn' ? 'multiturn' : 'packed',
  seed: 0,
};

if (mode === 'grpc') {
  const ts = await startTestServer(index);
  const call = (
    ts.client as unknown as { streamBatches(): NodeJS.ReadWriteStream & { cancel(): void } }
  ).streamBatches();
  let got = 0;
  let t0 = 0;
  await new Promise<void>((resolve, reject) => {
    call.on('data', (resp: { batch?: unknown }) => {
      if (!resp.batch) return;
      if (++got === 1) {
        t0 = performance.now();
        void startProfile();
      }
      if (got >= n + 1) {
        call.cancel();
        resolve();
      }
    });
    call.on('error', (e: { code?: number }) => (e.code === 1 ? resolve() : reject(e)));
    call.write({ spec: { ...spec, maxBatches: n + 1 } } as never);
  });
  const s = (performance.now() - t0) / 1000;
  await stopProfile();
  console.log(JSON.stringify({ mode, batches: n, seconds: s, batchesPerSec: n / s }));
  await ts.stop();
} else {
  const core = await DataServiceCore.open(index, coreSettings(loadConfig(undefined, { 'index.dir': index }, {})));
  const session = core.open({ spec });
  session.next();
  await startProfile();
  const t0 = performance.now();
  for (let k = 0; k < n; k++) session.next();
  const s = (performance.now() - t0) / 1000;
  await stopProfile();
  console.log(JSON.stringify({ mode, batches: n, seconds: s, batchesPerSec: n / s }));
}
