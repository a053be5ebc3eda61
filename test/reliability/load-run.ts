/**
 * The load scenario, shared by load.test.ts (a short run) and soak.ts (minutes): 64
 * concurrent StreamBatches calls over 8 connections to one server in a child process — fast
 * readers, slow readers that pause for seconds, and clients that cancel mid-stream and reconnect —
 * while the server's RSS and open file descriptors are sampled from /proc. Returns what happened;
 * callers assert (loadProblems).
 */
import type { WireResponse } from '../../clients/ts/wire-types.js';
import { FlanStreamClient, type BatchCall } from '../../clients/ts/service-client.js';
import { activeStreamsAt, fdsOf, rssOf, sleep, spawnServer } from './procs.js';
import { rng } from '../helpers/seeded-rng.js';
import { IdleClients } from '../helpers/idle-client.js';
import { fuzzLoop } from './token-fuzz.js';

export interface LoadResult {
  readonly durationMs: number;
  readonly streams: number;
  readonly opened: number;
  readonly cancelled: number;
  readonly batches: number;
  readonly bytes: number;
  /** Server RSS (bytes): after warm-up, the peak, at the end, and samples (one per second). */
  readonly rssWarm: number;
  readonly rssPeak: number;
  readonly rssEnd: number;
  readonly rssSamples: number[];
  /** Server open file descriptors: after warm-up, their peak from then on, and at the end. */
  readonly fdsWarm: number;
  readonly fdsPeak: number;
  readonly fdsEnd: number;
  /** Cancels per second on the busiest connection, averaged over the run. */
  readonly cancelRate: number;
  /** Streams that went `stallMs` without a batch while being read. */
  readonly stalls: string[];
  /** Calls that ended with an error other than a client cancel. */
  readonly errors: string[];
  /** Streams whose steps were not 0, 1, 2, … */
  readonly gaps: string[];
  readonly activeAtEnd: number;
  readonly activePeak: number;
  /** Worst event-loop delay of the server over the run, ms (perf_hooks.monitorEventLoopDelay). */
  readonly lagMaxMs: number;
  /** Idle streams held open alongside (clients that never read), and forged-token calls sent. */
  readonly idle: number;
  readonly fuzzCalls: number;
}

type Kind = 'fast' | 'slow' | 'cancel';

const CONNECTIONS = 8;

export async function runLoad(
  index: string,
  opts: {
    /** How long to run; with `enough`, the longest to run. */
    durationMs: number;
    /** Ends the run early, once at least `minMs` have passed, when this holds for the counts so far. */
    enough?: (sofar: { batches: number; cancelled: number }) => boolean;
    minMs?: number;
    streams?: number;
    stallMs?: number;
    idle?: number;
    fuzz?: boolean;
    log?: (s: string) => void;
  },
): Promise<LoadResult> {
  const streams = opts.streams ?? 64;
  const stallMs = opts.stallMs ?? 10_000;
  const idleCount = opts.idle ?? 0;
  const log = opts.log ?? (() => undefined);
  const server = await spawnServer(index, { 'server.max_streams': String(Math.max(256, streams + idleCount + 32)) });
  // Clients that open a stream and never read (soak): the server must hold them at bounded cost.
  const idleClients = Array.from({ length: Math.ceil(idleCount / 64) }, () => new IdleClients(server.target));
  for (let i = 0; i < idleCount; i++)
    idleClients[i % idleClients.length]!.open({
      spec: { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 1000 + i },
    });
  const pid = server.child.pid!;
  // grpc-js shares one connection among all channels to a target with equal options, and the
  // server's HTTP/2 stack (nghttp2 ≥ 1.57, rapid-reset defence) sends GOAWAY INTERNAL_ERROR to a
  // connection once its RST_STREAMs exceed 1000 plus 33 per second, failing every call on it. On
  // one connection the cancelling readers reset ~60 streams/s and every call failed after ~30 s;
  // spread over 8 connections each stays near 8/s, as separate trainer processes would.
  const clients = Array.from(
    { length: CONNECTIONS },
    () => new FlanStreamClient(server.target, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } }),
  );
  const cancelsOn = new Array<number>(CONNECTIONS).fill(0);
  const rand = rng(64);
  let opened = 0,
    cancelled = 0,
    batches = 0,
    bytes = 0;
  const stalls: string[] = [],
    errors: string[] = [],
    gaps: string[] = [];
  let stopping = false;

  interface Slot {
    kind: Kind;
    id: number;
    conn: number;
    call?: BatchCall;
    lastData: number;
    paused: boolean;
    nextStep: number;
  }
  const slots: Slot[] = [];
  const open = (slot: Slot): void => {
    if (stopping) return;
    opened++;
    const call = clients[slot.conn]!.streamBatches();
    slot.call = call;
    slot.lastData = Date.now();
    slot.paused = false;
    slot.nextStep = 0;
    let n = 0;
    const cancelAfter = slot.kind === 'cancel' ? 1 + Math.floor(rand() * 12) : Infinity;
    call.on('data', (r: WireResponse) => {
      if (!r.batch || slot.call !== call) return;
      slot.lastData = Date.now();
      batches++;
      bytes += r.batch.tokens.byteLength;
      if (r.batch.step !== slot.nextStep)
        gaps.push(`stream ${slot.id}: step ${r.batch.step}, expected ${slot.nextStep}`);
      slot.nextStep = r.batch.step + 1;
      n++;
      if (slot.kind === 'slow' && rand() < 0.1) {
        // Stop reading for 0.5–3 s: gRPC flow control must hold the server back, not buffer.
        call.pause();
        slot.paused = true;
        setTimeout(
          () => {
            slot.paused = false;
            slot.lastData = Date.now();
            call.resume();
          },
          500 + rand() * 2500,
        );
      }
      if (n === cancelAfter) {
        // Cancel mid-stream (batches are in flight), a moment later, and reconnect afresh.
        setTimeout(() => {
          cancelled++;
          cancelsOn[slot.conn]!++;
          slot.call = undefined;
          call.cancel();
          setTimeout(() => open(slot), rand() * 200);
        }, rand() * 30);
      }
    });
    call.on('error', (e: Error & { code?: number }) => {
      if (e.code === 1 /* CANCELLED */) return;
      errors.push(`stream ${slot.id} (${slot.kind}): ${e.message}`);
      // A failed call is reported once here, not again every stallMs as a stall.
      if (slot.call === call) slot.call = undefined;
    });
    const seed = slot.id;
    call.write({
      spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: slot.id % 3 === 0 ? 'none' : 'packed', seed },
    } as never);
  };

  const t0 = Date.now();
  const fuzz = opts.fuzz ? fuzzLoop(new FlanStreamClient(server.target), () => stopping) : undefined;
  for (let i = 0; i < streams; i++) {
    const kind: Kind = i % 8 < 3 ? 'fast' : i % 8 < 6 ? 'slow' : 'cancel';
    // Shifted by one per 8 slots, so every connection carries fast, slow and cancelling calls.
    const slot: Slot = {
      kind,
      id: i,
      conn: (i + Math.floor(i / 8)) % CONNECTIONS,
      lastData: Date.now(),
      paused: false,
      nextStep: 0,
    };
    slots.push(slot);
    open(slot);
  }

  const rssSamples: number[] = [];
  let activePeak = 0;
  let rssWarm = 0;
  let fdsWarm = 0,
    fdsPeak = 0;
  const shortestMs = opts.enough ? Math.min(opts.minMs ?? 0, opts.durationMs) : opts.durationMs;
  const warmMs = Math.min(10_000, shortestMs / 3);
  const done = (ms: number): boolean =>
    ms >= opts.durationMs || (ms >= shortestMs && rssWarm > 0 && !!opts.enough?.({ batches, cancelled }));
  while (!done(Date.now() - t0)) {
    await sleep(1000);
    rssSamples.push(rssOf(pid));
    const fds = fdsOf(pid);
    if (!rssWarm && Date.now() - t0 >= warmMs) {
      rssWarm = rssSamples.at(-1)!;
      fdsWarm = fds;
    }
    if (fdsWarm) fdsPeak = Math.max(fdsPeak, fds);
    activePeak = Math.max(activePeak, await activeStreamsAt(server.httpPort));
    const now = Date.now();
    for (const s of slots) {
      if (s.call && !s.paused && now - s.lastData > stallMs) {
        stalls.push(`stream ${s.id} (${s.kind}) got nothing for ${now - s.lastData} ms at t=${now - t0} ms`);
        s.lastData = now;
      }
    }
    if (rssSamples.length % 30 === 0)
      log(
        `t=${Math.round((now - t0) / 1000)} s: ${batches} batches, ${opened} streams opened, rss ${(rssSamples.at(-1)! / 2 ** 20).toFixed(0)} MB`,
      );
  }
  stopping = true;
  const fuzzed = await fuzz;
  if (fuzzed) errors.push(...fuzzed.problems);
  for (const c of idleClients) c.close();
  const lagMaxMs = server.maxLagMs();
  const ranMs = Date.now() - t0;
  for (const s of slots) {
    s.call?.cancel();
    s.call = undefined;
  }
  for (const c of clients) c.close();
  let activeAtEnd = -1;
  for (let i = 0; i < 50; i++) {
    activeAtEnd = await activeStreamsAt(server.httpPort);
    if (activeAtEnd === 0) break;
    await sleep(200);
  }
  await sleep(1000);
  const rssEnd = rssOf(pid);
  // The server closes its side of each connection once it sees the client's close.
  let fdsEnd = fdsOf(pid);
  for (let i = 0; i < 25 && fdsEnd >= fdsWarm; i++) {
    await sleep(200);
    fdsEnd = fdsOf(pid);
  }
  await server.kill();
  return {
    durationMs: Date.now() - t0,
    streams,
    opened,
    cancelled,
    batches,
    bytes,
    rssWarm: rssWarm || rssSamples[0]!,
    rssPeak: Math.max(...rssSamples),
    rssEnd,
    rssSamples,
    fdsWarm,
    fdsPeak,
    fdsEnd,
    cancelRate: Math.max(...cancelsOn) / (ranMs / 1000),
    stalls,
    errors,
    gaps,
    activeAtEnd,
    activePeak,
    lagMaxMs,
    idle: idleCount,
    fuzzCalls: fuzzed?.calls ?? 0,
  };
}

export function describeLoad(r: LoadResult): string {
  const mb = (x: number): string => `${(x / 2 ** 20).toFixed(0)} MB`;
  return (
    `load: ${r.streams} concurrent streams for ${(r.durationMs / 1000).toFixed(0)} s — ${r.opened} opened, ${r.cancelled} cancelled mid-stream, ${r.batches} batches (${mb(r.bytes)} of tokens); ` +
    `server RSS warm ${mb(r.rssWarm)}, peak ${mb(r.rssPeak)}, end ${mb(r.rssEnd)}; open fds warm ${r.fdsWarm}, peak ${r.fdsPeak}, end ${r.fdsEnd}; ` +
    `active streams peak ${r.activePeak}, at end ${r.activeAtEnd}; ${r.cancelRate.toFixed(1)} cancels/s on the busiest connection; ` +
    `${r.stalls.length} stalls, ${r.errors.length} errors, ${r.gaps.length} step gaps; worst event-loop delay ${r.lagMaxMs.toFixed(0)} ms` +
    (r.idle ? `; ${r.idle} idle streams alongside` : '') +
    (r.fuzzCalls ? `; ${r.fuzzCalls} forged-token calls` : '')
  );
}

/**
 * Everything that makes a load run unhealthy, as messages (empty when healthy): failed calls,
 * stalls, step gaps, streams or connections left open on the server, open descriptors growing
 * during the run, RSS growing more than 160 MB (or 60 %) above its warmed-up value.
 */
export function loadProblems(r: LoadResult): string[] {
  return [
    ...r.errors,
    ...r.stalls,
    ...r.gaps.slice(0, 20),
    ...(r.activeAtEnd !== 0 ? [`${r.activeAtEnd} streams still open on the server`] : []),
    // The 8 client connections are closed by now: fewer descriptors than while they were open.
    ...(r.fdsEnd >= r.fdsWarm
      ? [`server fds: ${r.fdsWarm} after warm-up, still ${r.fdsEnd} after every client closed`]
      : []),
    // Connections stay at 8 and streams open no descriptors: a few for /metrics scrapes at most.
    ...(r.fdsPeak - r.fdsWarm > 16 ? [`server fds grew from ${r.fdsWarm} to ${r.fdsPeak}`] : []),
    ...(r.rssPeak - r.rssWarm >= Math.max(160 * 2 ** 20, 0.6 * r.rssWarm)
      ? [`RSS grew from ${r.rssWarm} to ${r.rssPeak} bytes`]
      : []),
  ];
}
