import { connectivityState as Connectivity, status as Status } from '@grpc/grpc-js';
import { toFlanStreamError, type FlanStreamError } from './errors.js';
import type { BatchCall, Channel, FlanStreamClient } from './service-client.js';
import type { StreamRequest } from './spec.js';
import type { Batch, WireBatch, WireEnd, WireResponse } from './wire-types.js';

/**
 * What a connection hands its consumer, in stream order: decoded batches, then exactly one of
 * `end` (the server's StreamEnd), `eof` (closed without a StreamEnd), `error` (a failed call or a
 * batch that does not decode); `closed` once the consumer closed the connection itself.
 */
export type Item =
  | { readonly kind: 'batch'; readonly batch: Batch }
  | { readonly kind: 'end'; readonly end: WireEnd }
  | { readonly kind: 'eof' }
  | { readonly kind: 'error'; readonly error: FlanStreamError }
  | { readonly kind: 'closed' };

/** Reconnection policy: exponential backoff with jitter, bounded consecutive attempts. */
export interface RetryPolicy {
  /** Consecutive failed attempts tolerated before the error is raised (reset by every batch). */
  readonly attempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  /** Status codes that trigger a reconnect; others are raised at once. */
  readonly codes: readonly Status[];
}

/** Fast first retries (0.1, 0.2, 0.4, 0.8 s, then every second): a restart costs about its own length plus a second. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 30,
  initialBackoffMs: 100,
  maxBackoffMs: 1000,
  multiplier: 2,
  codes: [Status.UNAVAILABLE],
});

/**
 * Milliseconds to wait before reconnection attempt `attempt` (1-based): `min(max, initial ×
 * multiplier^(attempt-1))` times a jitter in [0.5, 1]; the first retry goes to the next replica
 * at once when there are several.
 */
export function retryDelay(p: RetryPolicy, attempt: number, rotate: boolean): number {
  if (rotate && attempt === 1) return 0;
  return (
    Math.min(p.maxBackoffMs, p.initialBackoffMs * p.multiplier ** Math.max(0, attempt - 1)) * (0.5 + Math.random() / 2)
  );
}

/**
 * Bytes (of input ids) read past the prefetch bound once the server announced its shutdown:
 * far more than a server still has queued then, and a bound should a GOAWAY come for another
 * reason while the server keeps building.
 */
export const READ_THROUGH_BYTES = 512 << 20;

/**
 * One `StreamBatches` call on one replica, read ahead into a queue of at most `prefetch`
 * decoded batches (the call is paused while the queue is full, so gRPC flow control holds the
 * server back). The final item (end, eof or error) always comes after every batch that preceded
 * it, so the consumer knows exactly what it handed out. Once the server announces its shutdown
 * (an HTTP/2 GOAWAY: the channel leaves READY) it builds nothing more, so the rest of the call
 * is read at once, past the bound (up to `READ_THROUGH_BYTES`): the final StreamEnd reaches this
 * process within the server's grace however slowly the loop consumes, and the loop still gets
 * every batch before it. Reconnecting is the consumer's job.
 */
export class StreamConnection {
  readonly target: string;
  private readonly call: BatchCall;
  private readonly decode: (b: WireBatch) => Batch;
  private readonly prefetch: number;
  private readonly items: Item[] = [];
  private waiter: ((item: Item) => void) | undefined;
  /** The final item has been queued; later events are ignored. */
  private finished = false;
  private closed = false;
  private failure: FlanStreamError | undefined;
  /** The server announced its shutdown: read the rest of the call without pausing. */
  private shutdownSeen = false;
  private readThrough = 0;

  constructor(client: FlanStreamClient, first: StreamRequest, decode: (b: WireBatch) => Batch, prefetch: number) {
    this.target = client.target;
    this.decode = decode;
    this.prefetch = prefetch;
    this.call = client.streamBatches();
    this.call.on('data', (resp: WireResponse) => this.onResponse(resp));
    this.call.on('error', (err: unknown) => {
      this.failure = toFlanStreamError(err, this.target);
      // grpc-js ends the readable side before emitting the error; with nothing left buffered
      // the error is next in stream order, otherwise it follows the buffered batches at 'end'.
      if (this.call.readableLength === 0) this.finish({ kind: 'error', error: this.failure });
    });
    this.call.on('end', () => this.finish(this.failure ? { kind: 'error', error: this.failure } : { kind: 'eof' }));
    this.call.write(first);
    this.watchShutdown(client.channel());
  }

  /** Leaving READY while this call streams means a GOAWAY: the server stopped building. */
  private watchShutdown(channel: Channel): void {
    let wasReady = false;
    const watch = (state: Connectivity): void => {
      if (this.finished) return;
      if (state === Connectivity.READY) wasReady = true;
      else if (wasReady) {
        this.shutdownSeen = true;
        this.call.resume();
        return;
      }
      try {
        channel.watchConnectivityState(state, Infinity, () => watch(channel.getConnectivityState(false)));
      } catch {
        // The channel was closed: so was this call.
      }
    };
    watch(channel.getConnectivityState(false));
  }

  /** Sends a later client message (a mixture update). */
  send(req: StreamRequest): void {
    if (!this.finished) this.call.write(req);
  }

  private onResponse(resp: WireResponse): void {
    if (this.finished) return;
    if (resp.kind === 'end' && resp.end) {
      this.finish({ kind: 'end', end: resp.end });
      return;
    }
    if (resp.kind !== 'batch' || !resp.batch) return;
    let item: Item;
    try {
      item = { kind: 'batch', batch: this.decode(resp.batch) };
    } catch (err) {
      this.finish({ kind: 'error', error: toFlanStreamError(err, this.target) });
      this.call.cancel();
      return;
    }
    this.push(item);
    if (this.items.length < this.prefetch) return;
    const size = item.batch.inputIds.byteLength;
    if (this.shutdownSeen && this.readThrough + size <= READ_THROUGH_BYTES) this.readThrough += size;
    else this.call.pause();
  }

  private push(item: Item): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(item);
    } else this.items.push(item);
  }

  private finish(item: Item): void {
    if (this.finished) return;
    this.finished = true;
    this.push(item);
    this.call.end();
  }

  /** The next item, waiting for one to arrive. */
  next(): Promise<Item> {
    const item = this.items.shift();
    if (item) {
      if (!this.finished && this.items.length < this.prefetch) this.call.resume();
      return Promise.resolve(item);
    }
    if (this.closed) return Promise.resolve({ kind: 'closed' });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Batches decoded and waiting. */
  get buffered(): number {
    return this.items.filter((i) => i.kind === 'batch').length;
  }

  /** Cancels the call and drops whatever was read ahead (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.items.length = 0;
    if (!this.finished) {
      this.finished = true;
      this.call.cancel();
    }
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ kind: 'closed' });
  }
}
