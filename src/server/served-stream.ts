import type { RawLossReport } from '../stream/loss-report.js';
import type { DataServiceCore } from '../stream/data-service-core.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { Placement, StreamSpec } from '../stream/stream-spec.js';
import type { PolicyView } from '../stream/stream-plan.js';
import type { StreamSession } from '../stream/stream-session.js';
import type { WireBatch, WireEnd } from '../stream/wire-types.js';
import { encodeStreamResponse } from './response-encoder.js';
import type { StreamBytes } from './send-budget.js';
import { ScanAborted } from '../util/steps.js';

/** A built batch: its wire bytes (what is sent) and its columns without the tokens (what metrics read). */
export interface EncodedBatch {
  readonly batch: WireBatch;
  readonly bytes: Buffer;
  /** Seconds spent building it, when it was built ahead elsewhere (a build worker); else the pump times build(). */
  readonly seconds?: number;
}

/**
 * What building the next message gave: a batch (charged to the stream's StreamBytes), the
 * stream's end, or nothing yet (a report is awaited, or the send budget has no room for another
 * batch of this stream: the pump waits for room and asks again).
 */
export type Built = EncodedBatch | { readonly end: WireEnd } | undefined;

/** What a stream is opened with, by its call (stream-call.ts). */
export interface StreamContext {
  /** Aborted once, when the call closes for whatever reason: the stream frees what it holds. */
  readonly signal: AbortSignal;
  /** The call's share of the send budget: every batch built for it is charged here. */
  readonly bytes: StreamBytes;
  /** Admits the stream before its open scans anything (the server's planning budget); throws to refuse it. */
  readonly admit?: (spec: StreamSpec, placement: Placement) => void;
}

/**
 * A stream as the gRPC adapter drives it, wherever its batches are built: in this thread
 * (LocalStream, a StreamSession) or on a build worker (RemoteStream, `serve --workers N`). The
 * methods that change the stream are asynchronous because a worker answers them; the getters
 * reflect the stream as of the last answer.
 */
export interface ServedStream {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  /** True while the next step waits for the loss report it feeds on (policy streams). */
  readonly waiting: boolean;
  build(): Promise<Built>;
  /** Ends the stream; `shutdown` hands back the token of the last batch sent. */
  end(reason: WireEnd['reason']): Promise<{ end: WireEnd }>;
  addReport(raw: RawLossReport): Promise<void>;
  addUpdate(raw: RawUpdate): Promise<void>;
  policyView(): PolicyView | undefined;
}

/**
 * Opens streams from first messages (a spec or a resume token); rejects with the request's error.
 * What an open scans runs between event-loop turns and stops when `ctx.signal` is aborted.
 */
export interface ServedStreamOpener {
  open(raw: RawOpen, ctx: StreamContext): Promise<ServedStream>;
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A stream built in this thread: planned in slices between event-loop turns, encoded here. */
export class LocalStream implements ServedStream {
  constructor(
    readonly session: StreamSession,
    private readonly ctx: StreamContext,
    private readonly checkReport: (raw: RawLossReport, s: StreamSession) => Parameters<StreamSession['addReport']>[0],
    private readonly checkUpdate: (raw: RawUpdate) => Parameters<StreamSession['addUpdate']>[0],
  ) {}

  get spec(): StreamSpec {
    return this.session.spec;
  }

  get placement(): Placement {
    return this.session.placement;
  }

  get waiting(): boolean {
    return this.session.waiting;
  }

  async build(): Promise<Built> {
    if (!this.ctx.bytes.mayBuild) return undefined;
    const msg = await this.session.nextAsync(yieldTurn);
    if (!msg || 'end' in msg) return msg as Built;
    const bytes = encodeStreamResponse(msg);
    this.ctx.bytes.take(bytes.length);
    return { batch: msg.batch, bytes };
  }

  end(reason: WireEnd['reason']): Promise<{ end: WireEnd }> {
    return Promise.resolve(this.session.end(reason) as { end: WireEnd });
  }

  async addReport(raw: RawLossReport): Promise<void> {
    this.session.addReport(this.checkReport(raw, this.session));
  }

  async addUpdate(raw: RawUpdate): Promise<void> {
    this.session.addUpdate(this.checkUpdate(raw));
  }

  policyView(): PolicyView | undefined {
    return this.session.policyView();
  }
}

/** Opens streams built in this thread (no workers). */
export class LocalOpener implements ServedStreamOpener {
  constructor(private readonly core: DataServiceCore) {}

  async open(raw: RawOpen, ctx: StreamContext): Promise<ServedStream> {
    const session = await this.core.openAsync(raw, { signal: ctx.signal, admit: ctx.admit });
    // The call closed as the open finished: nothing will take the stream.
    if (ctx.signal.aborted) {
      session.close();
      throw new ScanAborted();
    }
    ctx.signal.addEventListener('abort', () => session.close(), { once: true });
    return new LocalStream(
      session,
      ctx,
      (r, s) => this.core.lossReport(r, s.heldout),
      (u) => this.core.update(u),
    );
  }
}
