import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { InvalidArgumentError, ResourceExhaustedError, ShuttingDownError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DataServiceCore } from '../stream/data-service-core.js';
import type { StreamRequest__Output } from '../../proto/generated/flanstream/v1/StreamRequest.js';
import type { WireResponse } from '../stream/wire-types.js';
import { corpusInfo, corpusInfoWithContamination, sourcesKnown } from './corpus-info.js';
import { StreamMonitor } from './stream-monitor.js';
import { isUndecodable } from './proto.js';
import { SendBudget } from './send-budget.js';
import { LocalOpener, type ServedStream, type ServedStreamOpener } from './served-stream.js';
import { PlanBudget } from './plan-budget.js';
import { planBytes } from '../stream/plan-memory.js';
import type { Placement, StreamSpec } from '../stream/stream-spec.js';
import { StreamCall, type CallLimits } from './stream-call.js';
import { toStatus } from './to-status.js';

/**
 * A decoded request, typed from the .proto. The stream layer takes it as its own request types
 * (src/stream/stream-request.ts) with no copy: this compiles only while the two agree.
 */
type StreamRequest = StreamRequest__Output;

export interface ServiceLimits extends CallLimits {
  readonly maxStreams: number;
  readonly maxUpdatesPerSecond: number;
}

type Call = grpc.ServerDuplexStream<StreamRequest, WireResponse>;

function rejectUndecodable(req: unknown): void {
  if (isUndecodable(req))
    throw new InvalidArgumentError('request', `not a valid flanstream.v1 protobuf message (${req.undecodable})`);
}

/**
 * The gRPC adapter: admits calls (auth, draining, max_streams), turns each message into a domain
 * call, and counts what happens in metrics and the stream monitor. Each call's lifecycle (first
 * message, its timeout, streaming under backpressure, drain, close) is stream-call.ts; errors
 * reach the client through toStatus. Draining (SIGTERM) ends each stream after its in-flight
 * batch with its token.
 */
export class DataServiceHandlers {
  private readonly core: DataServiceCore;
  private readonly metrics: Metrics;
  private readonly limits: ServiceLimits;
  private readonly auth: (md: grpc.Metadata) => void;
  private readonly monitor: StreamMonitor;
  private readonly opener: ServedStreamOpener;
  private readonly live = new Map<Call, StreamCall<StreamRequest>>();
  private draining = false;
  private nextId = 0;

  readonly budget: SendBudget;
  readonly plans: PlanBudget;

  /**
   * `opener`: where streams are built (this thread by default; build workers with `serve --workers N`);
   * `plans`: the server-wide planning memory each open stream is charged (server.plan_budget_bytes).
   */
  constructor(
    core: DataServiceCore,
    metrics: Metrics,
    limits: ServiceLimits,
    auth: (md: grpc.Metadata) => void,
    monitor: StreamMonitor = new StreamMonitor(),
    budget = new SendBudget(Number.MAX_SAFE_INTEGER),
    opener: ServedStreamOpener = new LocalOpener(core),
    plans = new PlanBudget(Number.MAX_SAFE_INTEGER),
  ) {
    this.opener = opener;
    this.plans = plans;
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

  sessions(): ServedStream[] {
    return [...this.live.values()].flatMap((c) => (c.session ? [c.session] : []));
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      getCorpusInfo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          this.auth(call.metadata);
          rejectUndecodable(call.request);
          const req = call.request as { contamination?: boolean; filter?: string } | null;
          // A filter is parsed before any scan, so a bad one is INVALID_ARGUMENT at once.
          const filter = this.core.catalog.filter(req?.filter);
          if (req?.contamination === true || filter || !sourcesKnown(this.core.catalog)) {
            corpusInfoWithContamination(this.core.catalog, undefined, req?.contamination === true, filter).then(
              (info) => cb(null, info),
              (err: unknown) => cb(toStatus(err)),
            );
          } else {
            cb(null, corpusInfo(this.core.catalog));
          }
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
    const calls = [...this.live.values()];
    for (const c of calls) c.drain();
    return Promise.all(calls.map((c) => c.finished)).then(() => undefined);
  }

  private stream(call: Call): void {
    const id = `s${++this.nextId}`;
    const updates: number[] = [];
    // The stream's planning memory, given back once whichever way the call closes.
    let unplan = (): void => undefined;
    const sc: StreamCall<StreamRequest> = new StreamCall(call, this.limits, this.budget, {
      open: async (req, ctx) => {
        rejectUndecodable(req);
        // The stream's planning memory is charged before its open scans anything (admission
        // first): refused, the call fails and nothing was scanned for it.
        const admit = (spec: StreamSpec, placement: Placement): void => {
          unplan();
          unplan = this.plans.charge(planBytes(spec, placement));
        };
        let admitted = false;
        const session = await this.opener.open(req, {
          ...ctx,
          admit: (spec, placement) => {
            admit(spec, placement);
            admitted = true;
          },
        });
        if (!admitted) admit(session.spec, session.placement);
        this.monitor.open(id, session);
        return session;
      },
      message: (req, session, wake) => {
        rejectUndecodable(req);
        if (req.kind === 'losses' && req.losses) {
          return session.addReport(req.losses).then(() => {
            this.metrics.reports.inc();
            // A policy stream waits for the report its next step feeds on; the report wakes it.
            if (!session.waiting) wake();
          });
        }
        if (req.kind !== 'mixtureUpdate' || !req.mixtureUpdate)
          throw new InvalidArgumentError(
            'request',
            'after the first message only mixture_update and losses messages are accepted',
          );
        const now = Date.now();
        while (updates.length > 0 && (updates[0] ?? 0) < now - 1000) updates.shift();
        updates.push(now);
        if (updates.length > this.limits.maxUpdatesPerSecond)
          throw new ResourceExhaustedError(
            'mixture updates per second',
            updates.length,
            this.limits.maxUpdatesPerSecond,
          );
        return session.addUpdate(req.mixtureUpdate).then(() => this.metrics.updates.inc());
      },
      batch: (batch, seconds) => {
        this.metrics.observeBatch(batch, seconds, id);
        this.monitor.record(id, batch);
      },
      ended: (reason) => this.metrics.observeEnd(reason),
      failed: (st) => this.metrics.observeError(grpcStatus[st.code] ?? String(st.code)),
      closed: () => {
        unplan();
        if (this.live.delete(call)) this.metrics.activeStreams.dec();
        this.metrics.forgetStream(id);
        this.monitor.close(id);
      },
    });
    try {
      this.auth(call.metadata);
      if (this.draining) throw new ShuttingDownError();
      if (this.live.size >= this.limits.maxStreams)
        throw new ResourceExhaustedError('concurrent streams', this.live.size + 1, this.limits.maxStreams);
    } catch (err) {
      sc.fail(err);
      return;
    }
    this.live.set(call, sc);
    this.metrics.activeStreams.inc();
  }
}
