import type { RawLossReport } from '../stream/loss-report.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { PolicyView } from '../stream/stream-plan.js';
import type { Placement, StreamSpec } from '../stream/stream-spec.js';
import type { WireEnd } from '../stream/wire-types.js';
import { ResourceExhaustedError, revive } from '../errors.js';
import { MAX_PENDING_UPDATES } from '../stream/stream-spec.js';
import { unsummarize } from './batch-summary.js';
import type { Answer, BuildRequest, Built, StreamState } from './build-protocol.js';
import type { BuildWorker, StreamRoute } from './build-thread.js';
import type { Built as EncodedOrEnd, ServedStream } from './served-stream.js';

/** Messages a worker may build ahead of what a stream's pump took, and their bytes (build-protocol.ts). */
export const BUILD_AHEAD = { messages: 4, bytes: 16 << 20 };

/** A request with an answer, as a stream asks it (the stream and the id are added). */
type Question =
  Extract<BuildRequest, { id: number }> extends infer R
    ? R extends BuildRequest
      ? Omit<R, 'id' | 'stream'>
      : never
    : never;

type Asked = { resolve: (a: Answer) => void; reject: (e: Error) => void };

/** Mixture updates for one step held until the next batch is taken (the last one sent wins, as in the planner). */
interface Held {
  readonly step: number;
  raw: RawUpdate;
  readonly waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

/**
 * A stream built on a worker. The worker pushes the stream's messages built ahead (Built) into
 * `queue`; build() takes them in order and hands back credit. Requests are answered in order. A
 * mixture update holds build() until its answer: the worker applies it after the batch taken
 * last and drops what it built ahead (`rewound`), and so does this side, so the client gets the
 * batches a server without workers sends. The getters show the stream as of the last message.
 *
 * Updates that arrive while others are being answered are held until the stream took its next
 * message, then asked together (those for the same step coalesce: the last one wins, as in the
 * planner). Why: each update drops what the worker built ahead, so a client sending updates
 * faster than a batch is built used to keep build() waiting for good, a stall with no error.
 * Now at least one message goes out between rounds of updates; at most MAX_PENDING_UPDATES steps
 * are held (beyond, RESOURCE_EXHAUSTED, as the planner refuses more pending updates).
 */
export class RemoteStream implements ServedStream, StreamRoute {
  private closed = false;
  private failed: Error | undefined;
  private nextId = 0;
  private readonly asked = new Map<number, Asked>();
  private opened: Promise<Answer> | undefined;
  /** Messages built ahead and not taken yet. */
  private readonly queue: Built[] = [];
  /** Messages taken whose credit is not handed back yet (sent in pairs, and before any request). */
  private owed = 0;
  /** Mixture updates asked and not answered: build() waits for them. */
  private updating = 0;
  /** Updates that arrived while others were asked, by step, in arrival order of their steps. */
  private held: Held[] = [];
  /** The last round of updates is answered and more are held: they go once a message is taken. */
  private heldForTake = false;
  private wake: (() => void) | undefined;
  /** The worker's state as of its last message (waiting: it cannot build on without a report). */
  private latest: StreamState;
  /** The state as of the last message taken (what the status page shows). */
  private shown: StreamState;

  constructor(
    readonly worker: BuildWorker,
    private readonly id: number,
    readonly spec: StreamSpec,
    readonly placement: Placement,
    state: StreamState,
    /** Gives the worker slot back (worker-pool assignment). */
    private readonly release: () => void,
    /** Reports and updates are checked here first, so a bad one fails like without workers. */
    private readonly checkReport: (raw: RawLossReport) => unknown,
    private readonly checkUpdate: (raw: RawUpdate) => { readonly applyAtStep: number },
  ) {
    this.latest = state;
    this.shown = state;
  }

  /** Opens the stream on its worker; an open that fails there (the same code passed here) surfaces at the first build. */
  start(raw: RawOpen): void {
    this.worker.routes.set(this.id, this);
    this.opened = this.ask({ op: 'open', raw, credit: BUILD_AHEAD.messages, bytes: BUILD_AHEAD.bytes });
    this.opened.catch(() => undefined);
  }

  /** Messages built ahead and not taken yet. */
  get ahead(): number {
    return this.queue.length;
  }

  get waiting(): boolean {
    return this.queue.length === 0 && this.updating === 0 && this.held.length === 0 && this.latest.waiting;
  }

  /** A message of the worker about this stream. */
  receive(m: Built | Answer): void {
    if (this.closed) return;
    if ('id' in m) {
      const a = this.asked.get(m.id);
      this.asked.delete(m.id);
      // Dropped at once, before any later message of the worker can be taken.
      if (m.rewound) this.queue.length = 0;
      if (m.state) this.latest = m.state;
      if (m.error) a?.reject(revive(m.error));
      else a?.resolve(m);
    } else {
      this.queue.push(m);
      this.latest = m.state;
    }
    this.notify();
  }

  /** The worker died: every request and build fails with why. */
  fail(err: Error): void {
    this.failed ??= err;
    for (const a of this.asked.values()) a.reject(err);
    this.asked.clear();
    this.dropHeld(err);
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

  /** Hands back the credit of the messages taken, so the worker's marks[0] is the batch taken last. */
  private payCredit(): void {
    if (this.owed === 0) return;
    this.post({ op: 'credit', stream: this.id, n: this.owed });
    this.owed = 0;
  }

  private ask(req: Question): Promise<Answer> {
    this.payCredit();
    if (this.failed) return Promise.reject(this.failed);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.asked.set(id, { resolve, reject });
      this.post({ ...req, id, stream: this.id } as BuildRequest);
    });
  }

  async build(): Promise<EncodedOrEnd> {
    await this.opened;
    for (;;) {
      if (this.failed) throw this.failed;
      if (this.closed) return undefined;
      const m = this.updating === 0 ? this.queue.shift() : undefined;
      if (m) return this.take(m);
      if (this.updating === 0 && this.latest.waiting) {
        // No message comes before a loss report: held updates go now.
        if (this.held.length === 0) return undefined;
        this.askHeld();
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private take(m: Built): EncodedOrEnd {
    this.shown = m.state;
    this.owed++;
    // Held updates apply after this message (ask pays its credit first), or credit goes in pairs.
    if (this.heldForTake) this.askHeld();
    else if (this.owed >= BUILD_AHEAD.messages / 2) this.payCredit();
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
    await this.opened;
    const a = await this.ask({ op: 'end', reason });
    this.queue.length = 0;
    return { end: a.end! };
  }

  async addReport(raw: RawLossReport): Promise<void> {
    this.checkReport(raw);
    await this.opened;
    await this.ask({ op: 'report', raw });
  }

  async addUpdate(raw: RawUpdate): Promise<void> {
    const step = this.checkUpdate(raw).applyAtStep;
    if (this.updating === 0 && !this.heldForTake) return this.askUpdate(raw);
    const same = this.held.find((h) => h.step === step);
    if (!same && this.held.length >= MAX_PENDING_UPDATES)
      throw new ResourceExhaustedError(
        'pending mixture updates (steps of updates waiting for the next batch; send fewer, or fewer distinct apply_at_step)',
        this.held.length + 1,
        MAX_PENDING_UPDATES,
      );
    return new Promise((resolve, reject) => {
      if (same) {
        same.raw = raw;
        same.waiters.push({ resolve, reject });
      } else this.held.push({ step, raw, waiters: [{ resolve, reject }] });
    });
  }

  private async askUpdate(raw: RawUpdate): Promise<void> {
    this.updating++;
    try {
      await this.opened;
      await this.ask({ op: 'update', raw });
    } finally {
      if (--this.updating === 0 && this.held.length > 0) this.heldForTake = true;
      this.notify();
    }
  }

  /** Asks the held updates, one request per step. */
  private askHeld(): void {
    this.heldForTake = false;
    for (const h of this.held.splice(0)) {
      this.askUpdate(h.raw).then(
        () => h.waiters.forEach((w) => w.resolve()),
        (err: Error) => h.waiters.forEach((w) => w.reject(err)),
      );
    }
  }

  private dropHeld(err: Error): void {
    this.heldForTake = false;
    for (const h of this.held.splice(0)) h.waiters.forEach((w) => w.reject(err));
  }

  policyView(): PolicyView | undefined {
    return this.shown.policy;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.queue.length = 0;
    this.dropHeld(new Error('the stream is closed'));
    this.worker.routes.delete(this.id);
    this.worker.post({ op: 'close', stream: this.id });
    this.notify();
  }
}
