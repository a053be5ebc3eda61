import { status as Status } from '@grpc/grpc-js';
import { FlanStreamError, toFlanStreamError } from './errors.js';
import { FlanStreamClient, type Tls } from './service-client.js';
import {
  buildAudio,
  buildSpec,
  checkInt,
  checkOffered,
  checkPlacement,
  checkUpdate,
  normalizeTargets,
  updateMessage,
  type AudioOptions,
  type HeldoutArg,
  type MixtureArg,
  type Overlong,
  type Packing,
  type PendingUpdate,
  type Shuffle,
  type Split,
  type StreamRequest,
  type StreamSpecMessage,
  type Within,
} from './spec.js';
import { resolveUpdateWeights, type Weights } from './mixture-merge.js';
import { DEFAULT_RETRY, retryDelay, StreamConnection, type RetryPolicy } from './stream-connection.js';
import { BatchDecoder } from './wire-decode.js';
import type { Batch, BatchStats, CorpusInfo, DroppedAtOpen, StreamSummary } from './wire-types.js';

export { FlanStreamClient } from './service-client.js';

export interface DatasetOptions {
  readonly split?: Split;
  readonly batchSize?: number;
  readonly seqLen?: number;
  readonly packing?: Packing;
  readonly mixture?: MixtureArg;
  readonly heldout?: HeldoutArg;
  readonly seed?: number;
  readonly rank?: number;
  readonly worldSize?: number;
  /** Stop each iteration after this many batches (default: until the stream ends). */
  readonly maxBatches?: number;
  /** More replicas to fail over between (rank r starts at replica r % n). */
  readonly targets?: readonly string[];
  readonly token?: string;
  readonly tls?: Tls;
  /** Batches read ahead of the training loop (default 4). */
  readonly prefetch?: number;
  readonly window?: number;
  readonly overlong?: Overlong;
  readonly maxTurns?: number;
  /** Audio codebooks and layout, e.g. `{ codebooks: 1, layout: 'delay' }` (default: flat, all). */
  readonly audio?: AudioOptions;
  /** Train record order: 'global' or 'blocks' (default: the server's `stream.shuffle`). */
  readonly shuffle?: Shuffle;
  /** Blocks open at once under 'blocks' (default: the server's `stream.shuffle_window`). */
  readonly shuffleWindow?: number;
  /** Only records this expression over their metadata keeps (the server parses it); default: all. */
  readonly filter?: string;
  readonly retry?: Partial<RetryPolicy>;
}

/** What {@link FlanStreamDataset.stateDict} returns and {@link FlanStreamDataset.loadStateDict} takes. */
export interface DatasetState {
  readonly version: 1;
  /** The token of the last batch handed out; null before the first. */
  readonly resumeToken: Uint8Array | null;
  readonly step: number | null;
  readonly pendingUpdates: readonly PendingUpdate[];
  readonly finished: boolean;
  /** The spec of a fresh start (used when there is no token yet). */
  readonly spec: StreamSpecMessage;
  readonly rank: number;
  readonly worldSize: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Batches streamed by a flanstream server (docs/service.md), as an async iterable of decoded
 * {@link Batch}es. Iterating continues from the last batch handed out (consecutive loops walk one
 * stream); after a finite stream completed, `summary` holds the final counts and the next loop
 * starts it again. Starting a loop takes the stream over: a previous loop rejects when next asked
 * for a batch (`close()` ends it quietly). Transport errors (UNAVAILABLE), a
 * draining server (StreamEnd "shutdown") and streams closed without an end reconnect with backoff
 * to the next target, resuming after the last batch handed out; other errors reject the loop
 * with a {@link FlanStreamError}. Bad arguments throw `TypeError` before anything is sent.
 */
export class FlanStreamDataset implements AsyncIterable<Batch> {
  readonly targets: readonly string[];
  readonly rank: number;
  readonly worldSize: number;
  readonly maxBatches: number;
  readonly prefetch: number;
  readonly retry: RetryPolicy;
  /** After a finite stream ended: the server's final per-task counts. */
  summary: StreamSummary | null = null;
  /** Evaluation streams, from the first batch on (before any is used): the set's items that fit no row. */
  droppedAtOpen: DroppedAtOpen | null = null;
  private spec: StreamSpecMessage;
  private readonly clients: FlanStreamClient[];
  private targetIndex: number;
  private conn: StreamConnection | undefined;
  /** Bumped by every new loop and by close(): older loops stop. */
  private iterId = 0;
  /** The id of the newest loop (close() does not bump it): an older loop it replaced throws. */
  private newestIter = 0;
  private info: CorpusInfo | undefined;
  private decoder: BatchDecoder | undefined;
  private lastToken: Uint8Array | null = null;
  private lastStep: number | null = null;
  private pending: PendingUpdate[] = [];
  /** The last handed-out batch's stats: their per-task targets are the reference for partial updates. */
  private lastStats: BatchStats | null = null;
  /** Continued from a state with a token: updates applied before it are only in the token. */
  private restored = false;
  private finished = false;

  constructor(target: string | readonly string[], opts: DatasetOptions = {}) {
    this.targets = normalizeTargets(target, opts.targets);
    ({ rank: this.rank, worldSize: this.worldSize } = checkPlacement(opts.rank, opts.worldSize));
    this.maxBatches =
      opts.maxBatches === undefined ? 0 : checkInt('maxBatches', opts.maxBatches, 1, Number.MAX_SAFE_INTEGER);
    this.prefetch = checkInt('prefetch', opts.prefetch ?? 4, 1, 1 << 16);
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.spec = buildSpec({
      split: opts.split ?? 'train',
      batchSize: opts.batchSize ?? 8,
      seqLen: opts.seqLen ?? 4096,
      packing: opts.packing ?? 'packed',
      mixture: opts.mixture,
      heldout: opts.heldout,
      seed: opts.seed ?? 0,
      rank: this.rank,
      worldSize: this.worldSize,
      window: opts.window,
      overlong: opts.overlong,
      maxTurns: opts.maxTurns,
      audio: opts.audio,
      shuffle: opts.shuffle,
      shuffleWindow: opts.shuffleWindow,
      filter: opts.filter,
    });
    this.clients = this.targets.map((t) => new FlanStreamClient(t, { token: opts.token, tls: opts.tls }));
    this.targetIndex = this.rank % this.targets.length;
  }

  /** The replica currently used. */
  get target(): string {
    return this.targets[this.targetIndex]!;
  }

  /** Global step of the last batch handed out (null before the first). */
  get lastHandedStep(): number | null {
    return this.lastStep;
  }

  /** Mixture updates not yet in effect in a handed-out batch. */
  get pendingUpdates(): PendingUpdate[] {
    const last = this.lastStep;
    return this.pending.filter((u) => last === null || u.atStep > last);
  }

  /** The server's corpus info (fetched once, with failover). */
  async corpusInfo(): Promise<CorpusInfo> {
    for (let failures = 0; !this.info;) {
      try {
        this.info = await this.clients[this.targetIndex]!.corpusInfo();
      } catch (err) {
        failures = await this.backoff(failures, toFlanStreamError(err, this.target));
      }
    }
    return this.info;
  }

  /** Raises `error` unless it is retryable and attempts remain; else rotates target and waits. */
  private async backoff(failures: number, error: FlanStreamError): Promise<number> {
    const n = failures + 1;
    if (!this.retry.codes.includes(error.code)) throw error;
    if (n > this.retry.attempts)
      throw new FlanStreamError(
        Status.UNAVAILABLE,
        `gave up after ${n} attempts on ${this.targets.join(', ')}: ${error.details}`,
        this.target,
      );
    // A fresh channel dials at once on the next attempt; the failed one would first sit out
    // gRPC's own reconnect backoff, failing every call meanwhile.
    this.clients[this.targetIndex]!.close();
    this.targetIndex = (this.targetIndex + 1) % this.targets.length;
    await sleep(retryDelay(this.retry, n, this.targets.length > 1));
    return n;
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    this.newestIter = ++this.iterId;
    this.dropConnection();
    if (this.finished) [this.lastToken, this.lastStep, this.finished] = [null, null, false];
    this.summary = null;
    return this.generate(this.iterId);
  }

  private firstRequest(remaining: number): StreamRequest {
    const updates = this.pendingUpdates.map(updateMessage);
    if (this.lastToken === null) return { spec: { ...this.spec, maxBatches: remaining }, updates };
    // The audio, shuffle and filter choices are always sent: the server refuses a token made with other ones.
    const { shuffle, shuffleWindow, filter } = this.spec;
    const resume = {
      token: this.lastToken,
      rank: this.rank,
      worldSize: this.worldSize,
      maxBatches: remaining,
      audio: this.spec.audio ?? buildAudio(undefined),
      shuffle,
      shuffleWindow,
      filter: { text: filter },
      ...(this.spec.heldout ? { heldout: this.spec.heldout } : {}),
    };
    return { resume, updates };
  }

  private async connect(remaining: number): Promise<StreamConnection> {
    const info = await this.corpusInfo();
    checkOffered(this.spec, info.choices);
    this.decoder ??= new BatchDecoder(info);
    const decoder = this.decoder;
    this.conn = new StreamConnection(
      this.clients[this.targetIndex]!,
      this.firstRequest(remaining),
      (b) => decoder.decode(b),
      this.prefetch,
    );
    return this.conn;
  }

  private dropConnection(): void {
    const c = this.conn;
    this.conn = undefined;
    c?.close();
  }

  private async *generate(iterId: number): AsyncGenerator<Batch, void, undefined> {
    let handed = 0;
    let failures = 0;
    let mine: number | null = null; // the last step this loop handed out
    try {
      while (iterId === this.iterId) {
        const conn = this.conn ?? (await this.connect(this.maxBatches ? this.maxBatches - handed : 0));
        const item = await conn.next();
        if (conn !== this.conn || iterId !== this.iterId) continue; // restarted meanwhile (updateMixture / loadStateDict)
        if (item.kind === 'batch') {
          if (this.maxBatches && handed >= this.maxBatches) return;
          this.lastToken = item.batch.resumeToken;
          this.lastStep = item.batch.step;
          this.lastStats = item.batch.stats;
          if (item.batch.droppedAtOpen) this.droppedAtOpen = item.batch.droppedAtOpen;
          handed++;
          failures = 0;
          mine = item.batch.step;
          yield item.batch;
        } else if (item.kind === 'end' && item.end.reason !== 'shutdown') {
          this.summary = this.decoder!.summarize(item.end);
          this.finished = item.end.reason === 'complete';
          return;
        } else {
          // A transport error, a draining server or a stream closed without an end: resume elsewhere.
          this.dropConnection();
          const error =
            item.kind === 'error'
              ? item.error
              : new FlanStreamError(
                  Status.UNAVAILABLE,
                  item.kind === 'end' ? 'server is shutting down' : 'stream closed without a StreamEnd',
                  conn.target,
                );
          failures = await this.backoff(failures, error);
        }
      }
      if (this.newestIter > iterId)
        throw new Error(
          `this loop over FlanStreamDataset was ended by a newer one (after step ${String(mine)}): the dataset ` +
            'streams one loop at a time, and a new loop (or ds[Symbol.asyncIterator]()) took the stream over from ' +
            'there. Keep one loop, or build a separate FlanStreamDataset for a second stream',
        );
    } finally {
      if (iterId === this.iterId) this.dropConnection();
    }
  }

  /**
   * Switches to new mixture `weights` from global step `atStep` on, exactly. Batches read ahead
   * are dropped and the stream restarts from the last batch handed out, carrying every pending
   * update in its first message, so no batch built under the old weights for a step ≥ `atStep`
   * is ever handed out. Every rank must make the same call.
   *
   * An update replaces the whole mixture; `merge` decides what happens to selectors it leaves out
   * (see mixture-merge.ts): by default such a partial update throws a TypeError listing them,
   * `merge: true` merges it into the mixture in effect before `atStep`, `merge: false` zeroes them.
   * The check needs the corpus info, fetched with the first batch (or `await ds.corpusInfo()`).
   */
  updateMixture(
    weights: Readonly<Record<string, number>>,
    atStep: number,
    opts: { within?: Within; temperature?: number; cap?: number; merge?: boolean } = {},
  ): void {
    const { merge, ...rest } = opts;
    const checked = checkUpdate(weights, atStep, rest);
    if (merge !== undefined && typeof merge !== 'boolean')
      throw new TypeError(`merge must be true, false or undefined, got ${String(merge)}`);
    if (this.spec.split !== 'train')
      throw new TypeError(`mixture updates apply to split "train" only, not "${this.spec.split}"`);
    if (this.lastStep !== null && checked.atStep <= this.lastStep)
      throw new TypeError(`atStep (${checked.atStep}) must be after the last step handed out (${this.lastStep})`);
    let update = checked;
    if (merge !== false) {
      const current = this.weightsBefore(checked.atStep);
      if (!this.info)
        throw new TypeError(
          'checking a mixture update needs the corpus info: `await ds.corpusInfo()` first (it comes with the first batch), or pass { merge: false }',
        );
      update = {
        ...checked,
        weights: resolveUpdateWeights(checked.weights, current, this.info.tasks, merge, this.info.datasets),
      };
    }
    this.pending.push(update);
    this.dropConnection();
  }

  /**
   * The mixture in effect just before `atStep` (selector or task path → weight): the latest update
   * before it, else the spec's weights (unless restored from a token), else the last batch's
   * per-task targets; null when unknown.
   */
  private weightsBefore(atStep: number): Weights | null {
    const earlier = this.pending.filter((u) => u.atStep < atStep);
    if (earlier.length > 0) {
      const latest = Math.max(...earlier.map((u) => u.atStep));
      return earlier.filter((u) => u.atStep === latest).at(-1)!.weights;
    }
    const mix = this.spec.mixture;
    if (!this.restored && mix && !mix.name && mix.weights && Object.keys(mix.weights).length > 0) return mix.weights;
    if (this.lastStats)
      return Object.fromEntries(
        Object.entries(this.lastStats.tasks)
          .filter(([, t]) => t.target > 0)
          .map(([p, t]) => [p, t.target]),
      );
    return null;
  }

  /** Resume state of the last batch handed out (not of read-ahead ones). */
  stateDict(): DatasetState {
    return {
      version: 1,
      resumeToken: this.lastToken,
      step: this.lastStep,
      pendingUpdates: this.pendingUpdates,
      finished: this.finished,
      spec: structuredClone(this.spec),
      rank: this.rank,
      worldSize: this.worldSize,
    };
  }

  /**
   * Continues from `state` on the next batch, possibly at another rank / world size (elastic).
   * With a token the stream's content comes from the token (this dataset's held-out set is sent
   * along for the server to check); without one the saved spec is adopted for a fresh start.
   */
  loadStateDict(state: DatasetState): void {
    if (typeof state !== 'object' || state === null || state.version !== 1)
      throw new TypeError('not a FlanStreamDataset state (version 1)');
    if (state.resumeToken !== null && !(state.resumeToken instanceof Uint8Array))
      throw new TypeError('state.resumeToken must be a Uint8Array or null');
    const pending = state.pendingUpdates.map((u) => checkUpdate(u.weights, u.atStep, u));
    this.dropConnection();
    if (state.resumeToken === null)
      this.spec = { ...structuredClone(state.spec), rank: this.rank, worldSize: this.worldSize };
    this.lastToken = state.resumeToken;
    this.lastStep = state.step;
    this.pending = pending;
    this.lastStats = null;
    this.restored = state.resumeToken !== null;
    this.finished = state.finished;
    this.summary = null;
  }

  /** Stops any running stream and closes the channels. */
  close(): void {
    this.iterId++;
    this.dropConnection();
    for (const c of this.clients) c.close();
  }
}
