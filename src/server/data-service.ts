import type * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, ResourceExhaustedError, ShuttingDownError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DataServiceCore, RawOpen, RawUpdate } from '../stream/data-service-core.js';
import type { StreamSession } from '../stream/stream-session.js';
import type { WireResponse } from '../stream/wire-types.js';
import { corpusInfo } from './corpus-info.js';
import { toStatus } from './to-status.js';

interface StreamRequest extends RawOpen {
  kind?: 'spec' | 'resume' | 'mixtureUpdate';
  mixtureUpdate?: RawUpdate | null;
}

export interface ServiceLimits {
  readonly maxStreams: number;
  readonly maxUpdatesPerSecond: number;
}

type Call = grpc.ServerDuplexStream<StreamRequest, WireResponse>;

/**
 * The gRPC adapter: decodes requests, runs one pump per stream that builds a batch only when
 * the transport has room (write() → false waits for 'drain'), and maps every error through
 * toStatus. Draining (SIGTERM) ends each stream after its in-flight batch with its token.
 */
export class DataServiceHandlers {
  private readonly core: DataServiceCore;
  private readonly metrics: Metrics;
  private readonly limits: ServiceLimits;
  private readonly auth: (md: grpc.Metadata) => void;
  private readonly live = new Map<Call, { session?: StreamSession; stop: () => void }>();
  private draining = false;
  private nextId = 0;

  constructor(core: DataServiceCore, metrics: Metrics, limits: ServiceLimits, auth: (md: grpc.Metadata) => void) {
    this.core = core;
    this.metrics = metrics;
    this.limits = limits;
    this.auth = auth;
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
          cb(null, corpusInfo(this.core));
        } catch (err) {
          cb(toStatus(err));
        }
      },
      streamBatches: (call: Call) => this.stream(call),
    };
  }

  /** Stops taking streams; open ones end after their current batch with reason "shutdown". */
  drain(): void {
    this.draining = true;
    for (const s of this.live.values()) s.stop();
  }

  private stream(call: Call): void {
    const id = `s${++this.nextId}`;
    let session: StreamSession | undefined;
    let closed = false;
    let draining = false;
    let wake: (() => void) | undefined;
    const updates: number[] = [];
    const entry = { session, stop: () => { draining = true; wake?.(); } };

    const fail = (err: unknown): void => {
      if (closed) return;
      closed = true;
      const st = toStatus(err);
      this.metrics.errors.labels(String(st.code)).inc();
      cleanup();
      call.emit('error', st);
    };
    const cleanup = (): void => {
      closed = true;
      wake?.();
      if (this.live.delete(call)) this.metrics.activeStreams.dec();
      this.metrics.forgetStream(id);
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

    const pump = async (): Promise<void> => {
      while (!closed && session) {
        if (draining) {
          call.write(session.end('shutdown'));
          call.end();
          cleanup();
          return;
        }
        const started = performance.now();
        const msg = session.next();
        if (!msg) break;
        if ('batch' in msg) this.metrics.observeBatch(msg.batch, (performance.now() - started) / 1000, id);
        const room = call.write(msg);
        if ('end' in msg) {
          call.end();
          cleanup();
          return;
        }
        // Yield so updates and cancellations are seen between batches; wait when the transport is full.
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (room) setImmediate(resolve);
          else call.once('drain', resolve);
        });
        wake = undefined;
      }
    };

    call.on('data', (req: StreamRequest) => {
      if (closed) return;
      try {
        if (!session) {
          session = this.core.open(req);
          entry.session = session;
          pump().catch(fail);
          return;
        }
        if (req.kind !== 'mixtureUpdate' || !req.mixtureUpdate) throw new InvalidArgumentError('request', 'after the first message only mixture_update messages are accepted');
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
