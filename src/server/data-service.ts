import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { DeadlineError, InvalidArgumentError, ResourceExhaustedError, ShuttingDownError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DataServiceCore } from '../stream/data-service-core.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { RawLossReport } from '../stream/loss-report.js';
import type { StreamSession } from '../stream/stream-session.js';
import type { WireEnd, WireResponse } from '../stream/wire-types.js';
import { corpusInfo } from './corpus-info.js';
import { StreamMonitor } from './stream-monitor.js';
import { isUndecodable } from './proto.js';
import { SendBudget } from './send-budget.js';
import { StreamPump, type PumpCall, type PumpLimits } from './stream-pump.js';
import { toStatus } from './to-status.js';

interface StreamRequest extends RawOpen {
  kind?: 'spec' | 'resume' | 'mixtureUpdate' | 'losses';
  mixtureUpdate?: RawUpdate | null;
  losses?: RawLossReport | null;
}

export interface ServiceLimits extends PumpLimits {
  readonly maxStreams: number;
  readonly maxUpdatesPerSecond: number;
  /** A stream with no first message after this long is closed, freeing its slot. */
  readonly firstMessageMs: number;
}

type Call = grpc.ServerDuplexStream<StreamRequest, WireResponse>;

function rejectUndecodable(req: unknown): void {
  if (isUndecodable(req)) throw new InvalidArgumentError('request', `not a valid flanstream.v1 protobuf message (${req.undecodable})`);
}

/**
 * The gRPC adapter: decodes requests, runs one pump per stream that builds a batch only when
 * the transport has room (stream-pump.ts, within the server-wide SendBudget), and maps every
 * error through toStatus. Draining (SIGTERM) ends each stream after its in-flight batch with its
 * token; a stream that never sends its first message is closed after `firstMessageMs`.
 */
export class DataServiceHandlers {
  private readonly core: DataServiceCore;
  private readonly metrics: Metrics;
  private readonly limits: ServiceLimits;
  private readonly auth: (md: grpc.Metadata) => void;
  private readonly monitor: StreamMonitor;
  private readonly live = new Map<Call, { session?: StreamSession; stop: () => void; finished: Promise<void> }>();
  private draining = false;
  private nextId = 0;

  readonly budget: SendBudget;

  constructor(core: DataServiceCore, metrics: Metrics, limits: ServiceLimits, auth: (md: grpc.Metadata) => void, monitor: StreamMonitor = new StreamMonitor(), budget = new SendBudget(Number.MAX_SAFE_INTEGER)) {
    this.budget = budget;
    this.core = core;
    this.metrics = metrics;
    this.limits = limits;
    this.auth = auth;
    this.monitor = monitor;
  }

  get activeStreams(): number {
    return this.live.size;
  }

  sessions(): StreamSession[] {
    return [...this.live.values()].flatMap((s) => (s.session ? [s.session] : []));
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      getCorpusInfo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          this.auth(call.metadata);
          rejectUndecodable(call.request);
          cb(null, corpusInfo(this.core.catalog, (call.request as { contamination?: boolean } | null)?.contamination === true));
        } catch (err) {
          cb(toStatus(err));
        }
      },
      streamBatches: (call: Call) => this.stream(call),
    };
  }

  /**
   * Stops taking streams; open ones end after their current batch with reason "shutdown" and
   * the token of the last batch sent. Resolves once every open call has handed its last message
   * to the transport (or was cancelled), so the server can close without cutting a StreamEnd off.
   */
  drain(): Promise<void> {
    this.draining = true;
    const entries = [...this.live.values()];
    for (const s of entries) s.stop();
    return Promise.all(entries.map((s) => s.finished)).then(() => undefined);
  }

  private stream(call: Call): void {
    const id = `s${++this.nextId}`;
    let session: StreamSession | undefined;
    let closed = false;
    let draining = false;
    let pump: StreamPump | undefined;
    // A client that opens a stream and says nothing holds a slot of max_streams: not for long.
    const firstMessage = setTimeout(() => {
      if (!session) fail(new DeadlineError('server.first_message_timeout_ms', `no spec or resume token within ${this.limits.firstMessageMs} ms of opening the stream; send the first message at once`));
    }, this.limits.firstMessageMs);
    const updates: number[] = [];
    // 'finish': the last message and the status were handed to the transport; 'cancelled' and
    // 'close' cover clients that went away. Whichever comes first, nothing is left to flush.
    const finished = new Promise<void>((resolve) => {
      for (const ev of ['finish', 'close', 'cancelled']) call.once(ev, () => resolve());
    });
    const entry: { session?: StreamSession; stop: () => void; finished: Promise<void> } = {
      stop: () => {
        draining = true;
        // A stream that never sent its spec has no batch in flight and no token to hand back:
        // refuse it now rather than hold the shutdown open until the grace period.
        if (!session) fail(new ShuttingDownError());
        else pump?.kick();
      },
      finished,
    };

    const fail = (err: unknown): void => {
      if (closed) return;
      closed = true;
      const st = toStatus(err);
      this.metrics.observeError(grpcStatus[st.code] ?? String(st.code));
      cleanup();
      call.emit('error', st);
    };
    const cleanup = (): void => {
      closed = true;
      clearTimeout(firstMessage);
      pump?.release();
      if (this.live.delete(call)) this.metrics.activeStreams.dec();
      this.metrics.forgetStream(id);
      this.monitor.close(id);
    };
    try {
      this.auth(call.metadata);
      if (this.draining) throw new ShuttingDownError();
      if (this.live.size >= this.limits.maxStreams) throw new ResourceExhaustedError('concurrent streams', this.live.size + 1, this.limits.maxStreams);
    } catch (err) {
      fail(err);
      return;
    }
    this.live.set(call, entry);
    this.metrics.activeStreams.inc();

    const finish = (msg: { end: WireEnd }): void => {
      call.write(msg);
      this.metrics.observeEnd(msg.end.reason);
      call.end();
      cleanup();
    };
    call.on('data', (req: StreamRequest) => {
      if (closed) return;
      try {
        rejectUndecodable(req);
        if (!session) {
          session = this.core.open(req);
          entry.session = session;
          this.monitor.open(id, session);
          clearTimeout(firstMessage);
          pump = new StreamPump(call as unknown as PumpCall, session, this.budget, this.limits, {
            closed: () => closed,
            draining: () => draining,
            onBatch: (batch, seconds) => {
              this.metrics.observeBatch(batch, seconds, id);
              this.monitor.record(id, batch);
            },
            finish,
          });
          pump.run().catch(fail);
          return;
        }
        if (req.kind === 'losses' && req.losses) {
          session.addReport(this.core.lossReport(req.losses, session.heldout));
          this.metrics.reports.inc();
          // A policy stream waits for the report its next step feeds on; the report wakes it.
          if (!session.waiting) pump?.kick();
          return;
        }
        if (req.kind !== 'mixtureUpdate' || !req.mixtureUpdate) throw new InvalidArgumentError('request', 'after the first message only mixture_update and losses messages are accepted');
        const now = Date.now();
        while (updates.length > 0 && (updates[0] ?? 0) < now - 1000) updates.shift();
        updates.push(now);
        if (updates.length > this.limits.maxUpdatesPerSecond) throw new ResourceExhaustedError('mixture updates per second', updates.length, this.limits.maxUpdatesPerSecond);
        session.addUpdate(this.core.update(req.mixtureUpdate));
        this.metrics.updates.inc();
      } catch (err) {
        fail(err);
      }
    });
    call.on('cancelled', cleanup);
    call.on('error', cleanup);
    call.on('end', () => {
      if (!session) fail(new InvalidArgumentError('spec', 'the stream closed before its first message (a spec or a resume token)'));
    });
  }
}
