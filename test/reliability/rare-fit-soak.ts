/**
 * The soak's rare-fit phase: a real gRPC server in this process, `streams` clients each reading a
 * rare-fit stream (one task at a seq_len only a few of its records fit, packing none) for
 * `durationMs`, while the server's event-loop delay is sampled (the first stream's open, which
 * scans the task once for all later streams, apart). Reports batches, the worst delay,
 * RSS and open file descriptors; a worst delay over MAX_DELAY_MS is a problem.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { batchesOf } from '../helpers/grpc-stream-calls.js';
import { rareFit } from '../helpers/rare-fit.js';
import { startTestServer } from '../helpers/test-server.js';

/** An alarm, not a target: a planning slice is a few ms; this leaves room for GC and a loaded machine. */
const MAX_DELAY_MS = 500;

export interface RareFitSoak {
  readonly task: string;
  readonly fits: number;
  readonly records: number;
  readonly batches: number;
  /** Worst event-loop delay while the first stream opened and served a batch (the one-time scans). */
  readonly firstOpenMs: number;
  /** Worst event-loop delay afterwards. */
  readonly worstDelayMs: number;
  readonly rssMb: number;
  readonly fds: number;
  readonly problems: string[];
}

export async function rareFitSoak(index: string, durationMs: number, streams = 4): Promise<RareFitSoak> {
  const ts = await startTestServer(index);
  const client = new FlanStreamClient(ts.target);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  try {
    const { task, records, fits, seqLen } = rareFit(ts.server.core.catalog);
    const spec = (seed: number): object => ({
      split: 'train',
      batchSize: 64,
      seqLen,
      packing: 'none',
      overlong: 'drop',
      seed,
      mixture: { weights: { [task]: 1 } },
    });
    // The first stream of a seq_len scans the task once (which records fit, shared by later streams): reported apart.
    delay.enable();
    let batches = (await batchesOf(client, spec(0), 1)).length;
    delay.disable();
    const firstOpenMs = delay.max / 1e6;
    delay.reset();
    const until = Date.now() + durationMs;
    delay.enable();
    await Promise.all(
      Array.from({ length: streams }, async (_, k) => {
        for (let seed = k; Date.now() < until; seed += streams) {
          const got = await batchesOf(client, spec(seed + 1), 8);
          batches += got.length;
        }
      }),
    );
    delay.disable();
    const worstDelayMs = delay.max / 1e6;
    const problems =
      worstDelayMs > MAX_DELAY_MS
        ? [`rare-fit streams held the event loop for ${worstDelayMs.toFixed(0)} ms (at most ${MAX_DELAY_MS})`]
        : [];
    if (batches === 0) problems.push('rare-fit streams served no batch');
    return {
      task,
      records,
      fits,
      batches,
      firstOpenMs,
      worstDelayMs,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      fds: readdirSync('/proc/self/fd').length,
      problems,
    };
  } finally {
    client.close();
    await ts.stop();
  }
}

export function describeRareFit(r: RareFitSoak): string {
  return `rare-fit: ${r.task} (${r.fits} of ${r.records} records fit), ${r.batches} batches; worst event-loop delay ${r.worstDelayMs.toFixed(1)} ms (first stream's open: ${r.firstOpenMs.toFixed(1)} ms), RSS ${r.rssMb.toFixed(0)} MB, ${r.fds} fds`;
}
