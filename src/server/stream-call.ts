import * as grpc from '@grpc/grpc-js';
import { DeadlineError, InvalidArgumentError, ShuttingDownError } from '../errors.js';
import type { WireBatch, WireEnd, WireResponse } from '../stream/wire-types.js';
import type { SendBudget, StreamBytes } from './send-budget.js';
import type { ServedStream, StreamContext } from './served-stream.js';
import { StreamPump, type PumpCall, type PumpLimits } from './stream-pump.js';
import { toStatus } from './to-status.js';

/**
 * awaiting-first: open, no spec or token yet (the first-message timer runs);
 * opening: the first message came and its stream is being opened (what it scans runs between
 * event-loop turns; later messages wait for it); streaming: a session and its pump; draining:
 * shutdown asked, the in-flight batch still goes out, then StreamEnd{shutdown, token}; closed:
 * ended, failed or gone (terminal: an open still scanning stops, and its slot is free).
 */
export type CallState = 'awaiting-first' | 'opening' | 'streaming' | 'draining' | 'closed';

export interface CallLimits extends PumpLimits {
  /** A stream with no first message after this long is closed, freeing its slot. */
  readonly firstMessageMs: number;
}

/** What the service does at each step of a call; the call decides when. */
export interface CallHooks<Req> {
  /** The stream of a first message (rejects with a domain error to refuse it), opened in the call's context. */
  open(req: Req, ctx: StreamContext): Promise<ServedStream>;
  /**
   * A later message (mixture update, loss report) of a streaming call; `wake` re-checks the pump.
   * Its promise settles once the stream took it (a build worker answers asynchronously); a
   * rejection fails the call like a throw.
   */
  message(req: Req, session: ServedStream, wake: () => void): Promise<void> | void;
  batch(batch: WireBatch, seconds: number): void;
  /** The call ended with a StreamEnd of this reason. */
  ended(reason: string): void;
  /** The call ended with this error status. */
  failed(status: ReturnType<typeof toStatus>): void;
  /** Once, whichever way the call closed: free its slot and its views. */
  closed(): void;
}

type Call<Req> = grpc.ServerDuplexStream<Req, WireResponse>;

/**
 * One StreamBatches call as an explicit state machine (see CallState) with one AbortSignal,
 * aborted exactly once when the call reaches `closed`, for whatever reason: the pump stops, the
 * stream frees what it holds (a build worker's session), every byte built for the call goes back
 * to the send budget, the first-message timer is cleared and the service forgets the call, all
 * from that one event. Why: spread over flags and closures, every new way a call can
 * end (a timeout, a drain, a cancel mid-batch) had to remember each of those steps itself.
 * Modelled on connect-es's handler context (one signal for deadline, shutdown and cancel).
 */
export class StreamCall<Req> {
  private current: CallState = 'awaiting-first';
  private readonly controller = new AbortController();
  private readonly call: Call<Req>;
  private readonly hooks: CallHooks<Req>;
  private readonly limits: CallLimits;
  /** Every batch built for this call and not yet written out (a worker's build-ahead included). */
  private readonly bytes: StreamBytes;
  private pump: StreamPump | undefined;
  private openedSession: ServedStream | undefined;
  /** Messages that came while the stream opened: taken in order once it streams. */
  private readonly early: Req[] = [];
  /** Resolves once nothing is left to flush: the status was handed to the transport, or the client went away. */
  readonly finished: Promise<void>;

  constructor(call: Call<Req>, limits: CallLimits, budget: SendBudget, hooks: CallHooks<Req>) {
    this.call = call;
    this.limits = limits;
    this.bytes = budget.account();
    this.hooks = hooks;
    this.finished = new Promise<void>((resolve) => {
      for (const ev of ['finish', 'close', 'cancelled']) call.once(ev, () => resolve());
    });
    // A client that opens a stream and says nothing holds a slot of max_streams: not for long.
    const firstMessage = setTimeout(() => {
      if (this.current === 'awaiting-first')
        this.fail(
          new DeadlineError(
            'server.first_message_timeout_ms',
            `no spec or resume token within ${limits.firstMessageMs} ms of opening the stream; send the first message at once`,
          ),
        );
    }, limits.firstMessageMs);
    this.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(firstMessage);
        this.bytes.close();
        hooks.closed();
      },
      { once: true },
    );
    call.on('data', (req: Req) => this.receive(req));
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
    call.on('end', () => {
      if (this.current === 'awaiting-first')
        this.fail(
          new InvalidArgumentError('spec', 'the stream closed before its first message (a spec or a resume token)'),
        );
      // The client's side ended: a half-close (the call goes on), or an RST_STREAM with NO_ERROR.
      // Node's HTTP/2 takes the latter for a clean end of the client's side and keeps the stream
      // open until its own side finishes, which a call whose writes can no longer complete never
      // does, so grpc-js never emits 'cancelled' and the call held its slot and unsent bytes for
      // good. grpc-js checks whether the stream is closed on each send: an empty metadata send
      // (nothing goes out once headers were sent) makes it notice a reset and emit 'cancelled'.
      else if (this.current !== 'closed') call.sendMetadata(new grpc.Metadata());
    });
  }

  get state(): CallState {
    return this.current;
  }

  /** Aborted once, when the call closes. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get session(): ServedStream | undefined {
    return this.openedSession;
  }

  /**
   * Shutdown: a call without a session has no batch in flight and no token to hand back, so it is
   * refused now rather than holding the shutdown open; a streaming one ends after its current batch.
   */
  drain(): void {
    if (this.current === 'awaiting-first' || this.current === 'opening') this.fail(new ShuttingDownError());
    else if (this.current === 'streaming') {
      this.current = 'draining';
      this.pump?.kick();
    }
  }

  /** Ends the call with an error status (once; later failures of a closed call are dropped). */
  fail(err: unknown): void {
    if (this.current === 'closed') return;
    const st = toStatus(err);
    this.hooks.failed(st);
    this.close();
    this.call.emit('error', st);
  }

  private receive(req: Req): void {
    if (this.current === 'closed') return;
    if (this.current === 'opening') {
      this.early.push(req);
      return;
    }
    try {
      if (this.current === 'awaiting-first') {
        this.current = 'opening';
        this.hooks.open(req, { signal: this.signal, bytes: this.bytes }).then(
          (session) => this.start(session),
          (err: unknown) => this.fail(err),
        );
      } else
        this.hooks.message(req, this.openedSession!, () => this.pump?.kick())?.catch((err: unknown) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
  }

  private start(session: ServedStream): void {
    // Closed while opening (the opener stops and frees what it made when the signal aborts).
    if (this.current !== 'opening') return;
    this.openedSession = session;
    this.current = 'streaming';
    this.pump = new StreamPump(this.call as unknown as PumpCall, session, this.bytes, this.limits, this.signal, {
      draining: () => this.current === 'draining',
      onBatch: (batch, seconds) => this.hooks.batch(batch, seconds),
      finish: (msg) => this.finish(msg),
    });
    this.pump.run().catch((err: unknown) => this.fail(err));
    for (const req of this.early.splice(0)) this.receive(req);
  }

  private finish(msg: { end: WireEnd }): void {
    this.call.write(msg);
    this.hooks.ended(msg.end.reason);
    this.call.end();
    this.close();
  }

  private close(): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    this.controller.abort();
  }
}
