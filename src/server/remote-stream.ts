import type { LossReport } from '../mix/policy/policy-runner.js';
import type { RawLossReport } from '../stream/loss-report.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { PolicyView } from '../stream/stream-plan.js';
import type { MixtureUpdate, Placement, StreamSpec } from '../stream/stream-spec.js';
import type { WireEnd } from '../stream/wire-types.js';
import { revive } from '../errors.js';
import { unsummarize } from './batch-summary.js';
import type { Answer, BuildRequest, Built, StreamState } from './build-protocol.js';
import type { BuildWorker, StreamRoute } from './build-thread.js';
import { HeldUpdates } from './held-updates.js';
import type { Built as EncodedOrEnd, ServedStream, StreamContext } from './served-stream.js';

/** Messages a worker may build ahead of what a stream's pump took, and their bytes (within the send budget). */
export const BUILD_AHEAD = { messages: 4, bytes: 16 << 20 };

/** A request with an answer, as a stream asks it (the stream and the id are added). */
type Question =
  Extract<BuildRequest, { id: number }> extends infer R
    ? R extends BuildRequest
      ? Omit<R, 'id' | 'stream'>
      : never
    : never;

/**
 * opening: the worker has not answered the open yet (build() waits for it; nothing is known of
 * the stream's waiting); streaming: the worker builds what it is granted and build() takes it in
 * order; failed: the open or the worker failed, every build and request rejects with why;
 * closed: the call is gone (terminal; the worker forgets the stream).
 */
export type RemoteState =
  { readonly phase: 'opening' | 'streaming' | 'closed' } | { readonly phase: 'failed'; readonly error: Error };

/**
 * A stream built on a worker. The worker pushes the messages it was granted (Built) into `queue`;
 * build() takes them in order. Grants go one at a time, while the stream's build-ahead is within
 * BUILD_AHEAD and its call's share of the send budget may grow (StreamBytes.mayBuild): a batch is
 * charged as it arrives here, so the budget counts what workers built ahead, and a stream built
 * ahead holds at most one batch beyond the budget, like one built on this thread. Requests are
 * answered in order. A mixture update holds build() until its answer: the worker applies it after
 * the batch taken last and drops what it built ahead (`rewound`), and so does this side, so the
 * client gets the batches a server without workers sends. The getters show the stream as of the
 * last message.
 *
 * Updates that arrive while others are being answered are held (HeldUpdates) until the stream
 * took its next message, then asked together. Why: each update drops what the worker built
 * ahead, so a client sending updates faster than a batch is built would keep build() waiting for
 * good, a stall with no error. At least one message goes out between rounds of updates.
 */
export class RemoteStream implements ServedStream, StreamRoute {
  private state: RemoteState = { phase: 'opening' };
  private nextId = 0;
  private readonly asked = new Map<number, (a: Answer | Error) => void>();
  /** Messages built ahead and not taken yet (each batch charged to ctx.bytes). */
  private readonly queue: Built[] = [];
  /** Messages granted and not arrived yet (at most one). */
  private granted = 0;
  /** Messages taken that the worker has not been told of (told with the next post). */
  private owed = 0;
  /** Mixture updates asked and not answered: build() waits for them. */
  private updating = 0;
  /** Updates that arrived while others were asked. */
  private readonly held = new HeldUpdates();
  private wake: (() => void) | undefined;
  /** The worker's state as of its last message (waiting: it cannot build on without a report). */
  private latest: StreamState | undefined;
  /** The state as of the last message taken (what the status page shows). */
  private shown: StreamState | undefined;

  constructor(
    readonly worker: BuildWorker,
    private readonly id: number,
    readonly spec: StreamSpec,
    readonly placement: Placement,
    private readonly ctx: StreamContext,
    /** Gives the worker slot back (worker-pool assignment). */
    private readonly release: () => void,
    /** Reports and updates are checked here, once: a bad one fails like without workers. */
    private readonly checkReport: (raw: RawLossReport) => LossReport,
    private readonly checkUpdate: (raw: RawUpdate) => MixtureUpdate,
  ) {}

  /** Opens the stream on its worker, with its first grant; an open that fails there surfaces at the first build. */
  start(raw: RawOpen): void {
    this.worker.routes.set(this.id, this);
    this.ctx.signal.addEventListener('abort', () => this.close(), { once: true });
    this.granted = 1;
    this.post({ op: 'open', id: this.register((a) => this.opened(a)), stream: this.id, raw, grants: 1 });
  }

  private opened(a: Answer | Error): void {
    if (this.state.phase !== 'opening') return;
    if (a instanceof Error) return this.fail(a);
    this.latest = this.shown = a.state;
    this.state = { phase: 'streaming' };
  }

  /** Messages built ahead and not taken yet. */
  get ahead(): number {
    return this.queue.length;
  }

  get waiting(): boolean {
    return (
      this.state.phase === 'streaming' &&
      this.queue.length === 0 &&
      this.updating === 0 &&
      this.held.length === 0 &&
      !!this.latest?.waiting
    );
  }

  /** A message of the worker about this stream. */
  receive(m: Built | Answer): void {
    const { phase } = this.state;
    if (phase === 'closed') return;
    if ('id' in m) {
      const a = this.asked.get(m.id);
      this.asked.delete(m.id);
      // Dropped at once, before any later message of the worker can be taken.
      if (m.rewound) this.drop();
      if (m.state) this.latest = m.state;
      a?.(m.error ? revive(m.error) : m);
    } else if (phase !== 'failed') {
      this.granted--;
      this.latest = m.state;
      if (m.bytes) this.ctx.bytes.take(m.bytes.byteLength);
      this.queue.push(m);
      this.refill();
    }
    this.notify();
  }

  /** The open or the worker failed: every request and build fails with why. */
  fail(err: Error): void {
    if (this.state.phase === 'closed' || this.state.phase === 'failed') return;
    this.state = { phase: 'failed', error: err };
    this.drop();
    const waiting = [...this.asked.values()];
    this.asked.clear();
    for (const a of waiting) a(err);
    this.held.reject(err);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private post(req: BuildRequest): void {
    const gone = this.worker.post(req);
    if (gone) this.fail(gone);
  }

  /** Built ahead, now dropped (a rewind, an end, a failure): its bytes go back to the budget. */
  private drop(): void {
    for (const m of this.queue.splice(0)) if (m.bytes) this.ctx.bytes.give(m.bytes.byteLength);
  }

  /**
   * Grants the worker its next message while there is room for it: one grant at a time, within
   * BUILD_AHEAD, and within the send budget (a stream that holds nothing may always have one).
   * Tells the worker of the messages taken with it.
   */
  private refill(): void {
    if (this.state.phase !== 'streaming' || this.granted > 0) return;
    const bytes = this.queue.reduce((n, m) => n + (m.bytes?.byteLength ?? 0), 0);
    if (this.queue.length >= BUILD_AHEAD.messages || bytes >= BUILD_AHEAD.bytes || !this.ctx.bytes.mayBuild) return;
    this.granted = 1;
    this.post({ op: 'credit', stream: this.id, took: this.owed, grants: 1 });
    this.owed = 0;
  }

  private register(answered: (a: Answer | Error) => void): number {
    const id = ++this.nextId;
    this.asked.set(id, answered);
    return id;
  }

  private ask(req: Question): Promise<Answer> {
    const { state } = this;
    if (state.phase === 'failed') return Promise.reject(state.error);
    // The worker answers at the batch taken last: it must know which that is.
    if (this.owed > 0) {
      this.post({ op: 'credit', stream: this.id, took: this.owed, grants: 0 });
      this.owed = 0;
    }
    return new Promise((resolve, reject) => {
      const id = this.register((a) => (a instanceof Error ? reject(a) : resolve(a)));
      this.post({ ...req, id, stream: this.id } as BuildRequest);
    });
  }

  async build(): Promise<EncodedOrEnd> {
    for (;;) {
      const { state } = this;
      if (state.phase === 'failed') throw state.error;
      if (state.phase === 'closed') return undefined;
      if (state.phase === 'streaming' && this.updating === 0) {
        const m = this.queue.shift();
        if (m) return this.take(m);
        // Nothing is coming: the worker waits for a report (held updates go now), or the budget
        // has no room to grant.
        if (this.latest?.waiting) {
          if (this.held.length === 0) return undefined;
          this.askHeld();
          continue;
        }
        this.refill();
        if (this.granted === 0) return undefined;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private take(m: Built): EncodedOrEnd {
    this.shown = m.state;
    this.owed++;
    // Held updates apply after this message (the ask tells the worker what was taken first).
    if (this.held.forTake) this.askHeld();
    else this.refill();
    if (m.error) throw revive(m.error);
    if (m.end) return { end: m.end };
    const bytes = m.bytes!;
    return {
      batch: unsummarize(m.summary!),
      bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      seconds: m.seconds,
    };
  }

  async end(reason: WireEnd['reason']): Promise<{ end: WireEnd }> {
    const a = await this.ask({ op: 'end', reason });
    this.drop();
    return { end: a.end! };
  }

  async addReport(raw: RawLossReport): Promise<void> {
    await this.ask({ op: 'report', report: this.checkReport(raw) });
  }

  async addUpdate(raw: RawUpdate): Promise<void> {
    const update = this.checkUpdate(raw);
    if (this.updating === 0 && !this.held.forTake) return this.askUpdate(update);
    return this.held.hold(update);
  }

  private async askUpdate(update: MixtureUpdate): Promise<void> {
    this.updating++;
    try {
      await this.ask({ op: 'update', update });
    } finally {
      if (--this.updating === 0 && this.held.length > 0) this.held.forTake = true;
      this.notify();
    }
  }

  /** Asks the held updates, one request per step. */
  private askHeld(): void {
    for (const h of this.held.take()) {
      this.askUpdate(h.update).then(
        () => h.waiters.forEach((w) => w.resolve()),
        (err: Error) => h.waiters.forEach((w) => w.reject(err)),
      );
    }
  }

  policyView(): PolicyView | undefined {
    return this.shown?.policy;
  }

  /** The call closed: the worker slot and the session on the worker are freed (the call gives the bytes back). */
  private close(): void {
    if (this.state.phase === 'closed') return;
    this.state = { phase: 'closed' };
    this.release();
    this.queue.length = 0;
    this.held.reject(new Error('the stream is closed'));
    this.worker.routes.delete(this.id);
    this.worker.post({ op: 'close', stream: this.id });
    this.notify();
  }
}
