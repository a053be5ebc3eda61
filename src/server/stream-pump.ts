import type * as grpc from '@grpc/grpc-js';
import { ResourceExhaustedError } from '../errors.js';
import type { WireBatch, WireEnd, WireResponse } from '../stream/wire-types.js';
import type { StreamBytes } from './send-budget.js';
import type { ServedStream } from './served-stream.js';

export interface PumpLimits {
  /** Batches built but not yet handed to the socket, per stream. */
  readonly bufferBatches: number;
  /** Bytes built but not yet handed to the socket, per stream (one batch always may be). */
  readonly bufferBytes: number;
  /** server.max_message_bytes: a batch message larger than this is refused, not sent. */
  readonly maxMessageBytes: number;
}

export interface PumpHooks {
  readonly draining: () => boolean;
  readonly onBatch: (batch: WireBatch, seconds: number) => void;
  /** Writes the StreamEnd and closes the call. */
  readonly finish: (msg: { end: WireEnd }) => void;
}

/** The call as the pump writes it: batches pre-encoded (Buffer), the StreamEnd as an object. */
export type PumpCall = grpc.ServerDuplexStream<unknown, WireResponse | Buffer>;

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Builds one stream's batches while the transport has room. Room is counted from write
 * callbacks, which grpc-js calls once a message left its own queue and HTTP/2's for the socket:
 * at most `bufferBatches` batches and `bufferBytes` bytes per stream. write()'s return value is
 * not enough: in object mode it turns false only after 16 queued messages. Messages arrive
 * encoded, so their exact size is known before they are queued, and charged to the stream's
 * share of the server-wide SendBudget by whoever built them (served-stream.ts): the pump gives
 * each back once it is written out.
 */
export class StreamPump {
  private readonly call: PumpCall;
  private readonly session: ServedStream;
  private readonly account: StreamBytes;
  private readonly limits: PumpLimits;
  private readonly hooks: PumpHooks;
  /** The call's signal (stream-call.ts): aborted when the call closes, for any reason. */
  private readonly signal: AbortSignal;
  private outstanding = 0;
  private bytes = 0;
  private wake: (() => void) | undefined;

  constructor(
    call: PumpCall,
    session: ServedStream,
    account: StreamBytes,
    limits: PumpLimits,
    signal: AbortSignal,
    hooks: PumpHooks,
  ) {
    this.call = call;
    this.session = session;
    this.account = account;
    this.limits = limits;
    this.hooks = hooks;
    this.signal = signal;
    // grpc-js drops a closed call's write callbacks; the call gives its account back whole.
    signal.addEventListener('abort', () => this.release(), { once: true });
  }

  /** Batches and bytes built but not yet handed to the socket. */
  get buffered(): { batches: number; bytes: number } {
    return { batches: this.outstanding, bytes: this.bytes };
  }

  /** Re-checks at once (draining started, a loss report arrived). */
  kick(): void {
    this.wake?.();
  }

  /** The call is gone: a waiting run() wakes to stop. */
  private release(): void {
    this.bytes = 0;
    this.outstanding = 0;
    this.kick();
  }

  /**
   * Room in this stream's transport queue: a stream with nothing in flight may always take one
   * batch; beyond that, within its caps. The send budget is the stream's to check as it builds
   * (StreamBytes.mayBuild), since a batch built ahead is charged already.
   */
  private hasRoom(): boolean {
    if (this.outstanding === 0) return true;
    return this.outstanding < this.limits.bufferBatches && this.bytes < this.limits.bufferBytes;
  }

  async run(): Promise<void> {
    const { hooks, session, signal } = this;
    while (!signal.aborted) {
      if (hooks.draining()) return hooks.finish(await session.end('shutdown'));
      if (session.waiting || !this.hasRoom()) {
        // Waiting for room, or (a policy stream) for the loss report its next step feeds on.
        await this.room();
        continue;
      }
      const started = performance.now();
      const built = await session.build();
      if (signal.aborted) return;
      if (!built) {
        // Nothing yet: the send budget has no room for another batch of this stream, or a report is awaited.
        await this.room();
        continue;
      }
      if ('end' in built) return hooks.finish(built);
      const { bytes } = built;
      const n = bytes.length;
      // Charged to the stream's account as it was built; the pump holds it until written out.
      this.outstanding++;
      this.bytes += n;
      if (n > this.limits.maxMessageBytes) {
        throw new ResourceExhaustedError(
          'server.max_message_bytes (bytes of one batch message; lower batch_size)',
          bytes.length,
          this.limits.maxMessageBytes,
        );
      }
      hooks.onBatch(built.batch, built.seconds ?? (performance.now() - started) / 1000);
      this.call.write(bytes, () => this.sent(n));
      // Yield so updates and cancellations are seen between batches.
      await yieldTurn();
    }
  }

  private sent(n: number): void {
    if (this.signal.aborted) return;
    this.outstanding--;
    this.bytes -= n;
    this.account.give(n);
    this.kick();
  }

  /** Resolves when a write completes here or anywhere (budget), or on kick(). */
  private room(): Promise<void> {
    return new Promise((resolve) => {
      const go = (): void => {
        off();
        this.wake = undefined;
        resolve();
      };
      const off = this.account.onRoom(go);
      this.wake = go;
    });
  }
}
