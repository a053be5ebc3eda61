import type * as grpc from '@grpc/grpc-js';
import { ResourceExhaustedError } from '../errors.js';
import type { WireBatch, WireEnd, WireResponse } from '../stream/wire-types.js';
import type { SendBudget } from './send-budget.js';
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
 * at most `bufferBatches` batches and `bufferBytes` bytes per stream, within the server-wide
 * SendBudget. write()'s return value is not enough: in object mode it turns false only after 16
 * queued messages. Messages are encoded here, so their exact size is known before they are queued.
 */
export class StreamPump {
  private readonly call: PumpCall;
  private readonly session: ServedStream;
  private readonly budget: SendBudget;
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
    budget: SendBudget,
    limits: PumpLimits,
    signal: AbortSignal,
    hooks: PumpHooks,
  ) {
    this.call = call;
    this.session = session;
    this.budget = budget;
    this.limits = limits;
    this.hooks = hooks;
    this.signal = signal;
    // grpc-js drops a closed call's write callbacks: its unsent bytes go back to the budget now.
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

  /** The call is gone: its unsent bytes go back to the budget, and a waiting run() wakes to stop. */
  private release(): void {
    const bytes = this.bytes;
    this.bytes = 0;
    this.outstanding = 0;
    if (bytes > 0) this.budget.give(bytes);
    this.kick();
  }

  /**
   * A stream with nothing in flight may always build one batch, so streams that read are never
   * starved by ones that do not; beyond that, both its own caps and the server's budget must have
   * room. Unsent bytes stay within send_budget_bytes plus one batch per open stream.
   */
  private hasRoom(): boolean {
    if (this.outstanding === 0) return true;
    return this.budget.hasRoom && this.outstanding < this.limits.bufferBatches && this.bytes < this.limits.bufferBytes;
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
      if (signal.aborted || !built) return;
      if ('end' in built) return hooks.finish(built);
      const { bytes } = built;
      if (bytes.length > this.limits.maxMessageBytes) {
        throw new ResourceExhaustedError(
          'server.max_message_bytes (bytes of one batch message; lower batch_size)',
          bytes.length,
          this.limits.maxMessageBytes,
        );
      }
      hooks.onBatch(built.batch, built.seconds ?? (performance.now() - started) / 1000);
      const n = bytes.length;
      this.outstanding++;
      this.bytes += n;
      this.budget.take(n);
      this.call.write(bytes, () => this.sent(n));
      // Yield so updates and cancellations are seen between batches.
      await yieldTurn();
    }
  }

  private sent(n: number): void {
    if (this.signal.aborted) return;
    this.outstanding--;
    this.bytes -= n;
    this.budget.give(n);
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
      const off = this.budget.onRoom(go);
      this.wake = go;
    });
  }
}
