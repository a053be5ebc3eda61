/**
 * The soak's planning-budget phase: a server in its own process with the default
 * server.plan_budget_bytes, and `streams` clients each opening a stream at the largest step the
 * server allows (world_size × batch_size × seq_len = server.max_step_tokens) and reading it, again
 * and again for `durationMs`. The budget admits a few of them at a time and refuses the rest
 * (RESOURCE_EXHAUSTED naming server.plan_budget_bytes); the server's RSS is sampled throughout.
 * Reports admitted and refused opens, batches, the peak RSS over its idle value, fds and the
 * worst event-loop delay. Problems: an open refused any other way, no refusal at all (the budget
 * never acted), peak RSS above the budget plus MAX_OVER_MB, or planning memory left charged at the end.
 */
import * as grpc from '@grpc/grpc-js';
import { dataClient, scrape, sumOf, type Message } from '../ops/helpers/grpc.js';
import { fdsOf, rssOf, sleep, spawnServer } from './procs.js';

/** Besides the budget: the page cache, the plan cache shared by ranks, send buffers, V8's slack. */
const MAX_OVER_MB = 1024;
const BUDGET_MB = 1024;

export interface PlanBudgetSoak {
  readonly opened: number;
  readonly refused: number;
  readonly batches: number;
  readonly idleRssMb: number;
  readonly peakRssMb: number;
  readonly fds: number;
  readonly worstDelayMs: number;
  readonly problems: string[];
}

/** One stream at the largest step: resolves with its batches, or with its refusal status. */
function oneStream(
  target: string,
  seed: number,
  batches: number,
): Promise<{ batches: number; error?: grpc.ServiceError }> {
  const c = dataClient(target);
  return new Promise((resolve) => {
    const call = c.streamBatches(new grpc.Metadata());
    let n = 0;
    const done = (error?: grpc.ServiceError): void => {
      c.close();
      resolve({ batches: n, error });
    };
    call.on('data', (m: Message) => {
      if (m.batch && ++n >= batches) call.cancel();
    });
    call.on('error', (e: grpc.ServiceError) => done(e.code === grpc.status.CANCELLED ? undefined : e));
    call.on('end', () => done());
    call.write({
      spec: { split: 'train', batchSize: 8, seqLen: 131072, worldSize: 256, rank: seed % 256, seed, packing: 'packed' },
    });
  });
}

export async function planBudgetSoak(
  index: string,
  durationMs: number,
  streams = 16,
  budgetMb = BUDGET_MB,
): Promise<PlanBudgetSoak> {
  const server = await spawnServer(index, { 'server.plan_budget_bytes': String(budgetMb * 2 ** 20) });
  const pid = server.child.pid!;
  try {
    await sleep(500);
    const idleRss = rssOf(pid);
    let peakRss = idleRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 100);
    let opened = 0;
    let refused = 0;
    let batches = 0;
    const problems: string[] = [];
    const until = Date.now() + durationMs;
    try {
      await Promise.all(
        Array.from({ length: streams }, async (_, k) => {
          for (let seed = k; Date.now() < until; seed += streams) {
            const r = await oneStream(server.target, seed, 2);
            batches += r.batches;
            if (!r.error) opened++;
            else if (
              r.error.code === grpc.status.RESOURCE_EXHAUSTED &&
              /server\.plan_budget_bytes/.test(r.error.details)
            ) {
              refused++;
              await sleep(200);
            } else problems.push(`a largest-step stream failed: ${r.error.code} ${r.error.details}`);
          }
        }),
      );
    } finally {
      clearInterval(sampler);
    }
    await sleep(300);
    const m = await scrape(server.httpPort);
    const held = sumOf(m, 'flanstream_plan_bytes');
    if (held !== 0) problems.push(`${held} bytes of planning memory still charged after every stream ended`);
    if (sumOf(m, 'flanstream_plan_refusals_total') !== refused)
      problems.push(
        `flanstream_plan_refusals_total says ${sumOf(m, 'flanstream_plan_refusals_total')}, clients saw ${refused}`,
      );
    if (refused === 0)
      problems.push(`${streams} largest-step streams at once were never refused: the budget did not act`);
    const overMb = (peakRss - idleRss) / 2 ** 20;
    if (overMb > budgetMb + MAX_OVER_MB)
      problems.push(`RSS rose ${overMb.toFixed(0)} MB over idle (budget ${budgetMb} MB + ${MAX_OVER_MB} MB allowed)`);
    return {
      opened,
      refused,
      batches,
      idleRssMb: idleRss / 2 ** 20,
      peakRssMb: peakRss / 2 ** 20,
      fds: fdsOf(pid),
      worstDelayMs: server.maxLagMs(),
      problems: problems.slice(0, 10),
    };
  } finally {
    await server.kill();
  }
}

export function describePlanBudget(r: PlanBudgetSoak): string {
  return `plan budget: ${r.opened} largest-step streams served, ${r.refused} refused (RESOURCE_EXHAUSTED), ${r.batches} batches; RSS ${r.idleRssMb.toFixed(0)} MB idle, ${r.peakRssMb.toFixed(0)} MB peak; ${r.fds} fds; worst event-loop delay ${r.worstDelayMs.toFixed(1)} ms`;
}
