import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { toFlanStreamError } from './errors.js';
import { dataServiceClient } from './proto.js';
import { checkTarget } from './spec.js';
import type { DataServiceClient } from '../../proto/generated/flanstream/v1/DataService.js';
import type { CorpusInfo } from './wire-types.js';

/** A gRPC channel (grpc-js exports the interface only as what `Client.getChannel` returns). */
export type Channel = ReturnType<grpc.Client['getChannel']>;

/** `false` (plaintext), `true` (TLS with the system roots) or the path of a PEM root bundle. */
export type Tls = boolean | string;

export interface ClientOptions {
  /** Bearer token, sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string | undefined;
  readonly tls?: Tls | undefined;
  /** Deadline of unary calls (`corpusInfo`), in milliseconds; default 30 s. */
  readonly timeoutMs?: number | undefined;
  /** Extra gRPC channel options. */
  readonly channelOptions?: grpc.ChannelOptions | undefined;
}

/** The raw bidirectional `StreamBatches` call: writes `StreamRequest`s (spec.ts), reads `WireResponse`s. */
export type BatchCall = ReturnType<DataServiceClient['streamBatches']>;

/**
 * A client of one `flanstream.v1.DataService` replica: channel set-up, bearer token, TLS, and
 * the two calls. Most users want {@link FlanStreamDataset}; `corpusInfo()` lists the tasks,
 * vocabulary layout, named mixtures and held-out sets.
 */
/** Longest bearer token sent: far above real tokens, far below HTTP/2's 64 KiB header-field limit. */
export const MAX_TOKEN_CHARS = 16384;

export class FlanStreamClient {
  readonly target: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  private stub: DataServiceClient | undefined;

  constructor(target: string, opts: ClientOptions = {}) {
    checkTarget(target);
    if (opts.token !== undefined && (typeof opts.token !== 'string' || !opts.token))
      throw new TypeError('token must be a non-empty string');
    // HTTP/2 servers refuse a header field over 64 KiB before any handler sees it (the call then
    // fails as an unexplained RST_STREAM, or hangs in clients that retry refused streams).
    if (opts.token !== undefined && opts.token.length > MAX_TOKEN_CHARS)
      throw new TypeError(
        `token has ${opts.token.length} characters; bearer tokens over ${MAX_TOKEN_CHARS} cannot be sent as an authorization header`,
      );
    this.target = target;
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    const tls = opts.tls ?? false;
    if (tls === false) this.credentials = grpc.credentials.createInsecure();
    else if (tls === true) this.credentials = grpc.credentials.createSsl();
    else this.credentials = grpc.credentials.createSsl(readFileSync(tls));
    // Batches are batch_size × seq_len × 4 bytes plus metadata: lift gRPC's 4 MiB receive cap.
    // gRPC's own reconnect backoff (1 s, then ×1.6 up to 120 s) would leave a restarted server
    // unreached for seconds after it listens: capped at 1 s.
    this.channelOptions = {
      'grpc.max_receive_message_length': -1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...opts.channelOptions,
    };
  }

  private get client(): DataServiceClient {
    this.stub ??= new (dataServiceClient())(
      this.target,
      this.credentials,
      this.channelOptions,
    ) as unknown as DataServiceClient;
    return this.stub;
  }

  /** The gRPC channel to this replica (its connectivity tells when the server announced a shutdown). */
  channel(): Channel {
    return (this.client as unknown as grpc.Client).getChannel();
  }

  /** Call metadata: the bearer token, if any. */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  /**
   * `GetCorpusInfo`. Rejects with a {@link FlanStreamError} carrying the call's status. With
   * `contamination`, each held-out set also reports what its guards remove (the server scans the
   * train records once per guarded set, then caches).
   */
  corpusInfo(timeoutMs = this.timeoutMs, opts: { contamination?: boolean } = {}): Promise<CorpusInfo> {
    return new Promise((resolve, reject) => {
      this.client.getCorpusInfo(
        { contamination: opts.contamination === true },
        this.metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, info) => {
          if (err || !info) reject(toFlanStreamError(err ?? new Error('empty answer'), this.target));
          else resolve(info);
        },
      );
    });
  }

  /** Opens a raw `StreamBatches` call (write a spec or resume first; read `WireResponse`s). */
  streamBatches(): BatchCall {
    return this.client.streamBatches(this.metadata());
  }

  /** Closes the channel (a later call opens a new one). */
  close(): void {
    this.stub?.close();
    this.stub = undefined;
  }
}
