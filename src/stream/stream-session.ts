import { packingStrategy } from '../pack/registry.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { batchMessage, endMessage } from './batch-builder.js';
import type { PlannedStep } from './plan-cache.js';
import { planStrictly, type Held, type PlanReads } from './plan-reads.js';
import type { PolicyView, StreamPlan } from './stream-plan.js';
import type { MixtureUpdate, Placement, StreamSpec } from './stream-spec.js';
import { taskDomains } from './stream-stats.js';
import type { WireEnd, WireResponse } from './wire-types.js';

/** Most rows planned between checks of the clock in nextAsync (fewer when rows are long: see planNext). */
const ROWS_PER_SLICE = 64;
/** Longest stretch of planning before the event loop gets a turn. */
const SLICE_MS = 10;

/** A stream's position after a message: what `rewind` returns to. */
export interface SessionMark {
  readonly token: Buffer;
  readonly step: number;
  readonly sent: number;
}

/**
 * Before a planned batch is built: resolves once what building this rank's `rows` reads is at
 * hand (the pages of their records), so that building them never waits on storage. What it
 * resolves to is released once the batch is built (the pages stop being held for it).
 */
export type BatchReady = (rows: readonly (readonly Segment[])[]) => Promise<{ release(): void }>;

/** A global step planned for all ranks. */
interface Planned {
  readonly step: number;
  readonly planned: PlannedStep;
}

export interface SessionInit {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  readonly layout: SegmentLayout;
  /** What is served: a train or an evaluation plan (stream-plan.ts). */
  readonly plan: StreamPlan;
  /** The next global step to build. */
  readonly step: number;
  /** Awaited by nextAsync between planning a step and building it (see `nextAsync`); none: build at once. */
  readonly ready?: BatchReady;
  /** How nextAsync plans without reading on the spot (plan-reads.ts); none: planning reads what it misses. */
  readonly reads?: PlanReads;
}

/**
 * One client's stream, as a loop: plans each global step (world_size × batch_size rows) with the
 * stream's plan, materializes only this rank's rows, and attaches the resume token that continues
 * right after the batch. It keeps the step, the messages sent and the last token; what is served
 * and what a token remembers of it is the plan's. Building is on demand, so a slow client holds
 * at most what gRPC buffers.
 */
export class StreamSession {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  private readonly plan: StreamPlan;
  private readonly layout: SegmentLayout;
  private readonly ready: BatchReady | undefined;
  private readonly reads: PlanReads | undefined;
  private readonly taskDomain: Int32Array;
  private readonly asExamples: boolean;
  private step: number;
  private sent = 0;
  private finished = false;
  private rowsPerCall = ROWS_PER_SLICE;
  private lastToken: Buffer;

  constructor(init: SessionInit) {
    this.spec = init.spec;
    this.placement = init.placement;
    this.heldout = init.heldout;
    this.plan = init.plan;
    this.layout = init.layout;
    this.ready = init.ready;
    this.reads = init.reads;
    this.step = init.step;
    this.taskDomain = taskDomains(init.layout);
    this.asExamples = packingStrategy(init.spec.packing).sendsExamples;
    this.lastToken = init.plan.token(init.step);
  }

  get nextStep(): number {
    return this.step;
  }

  /** The token of the last batch sent (or of the start), for a client being drained. */
  get resumeToken(): Buffer {
    return this.lastToken;
  }

  /** A mixture update (train streams; others refuse it as INVALID_ARGUMENT). */
  addUpdate(u: MixtureUpdate): void {
    this.plan.addUpdate(u, this.step);
  }

  /**
   * A checked loss report (loss-report.ts) of a step this stream served; see report-window.ts.
   * `next`: the first step not sent yet, when that is behind the next step to plan (a build
   * worker planning ahead of what the server thread sent).
   */
  addReport(r: LossReport, next = this.step): void {
    this.plan.addReport(r, next);
  }

  /** The stream's call closed (whichever way): lets go of what the plan shares with other streams. */
  close(): void {
    this.reads?.clear();
    this.plan.close();
  }

  /** Where the stream stands after its last message, for `rewind` (a build worker keeps one per batch built ahead). */
  get mark(): SessionMark {
    return { token: this.lastToken, step: this.step, sent: this.sent };
  }

  /**
   * Back to a mark of this stream, as if the messages after it were never built: the plan is
   * restored from the mark's token (exact, like a resume); reports already taken stay
   * (report-window.ts keeps what a rebuilt step consumes). A build worker rewinds the batches it
   * built ahead when a mixture update arrives after the server thread sent the mark's batch.
   * `sentToken`: the last batch's token, when the plan goes back to a later state than it (a
   * step that missed a page, with the updates queued since that batch).
   */
  rewind(to: SessionMark, sentToken = to.token): void {
    this.plan.rewind(to.token);
    this.step = to.step;
    this.sent = to.sent;
    this.lastToken = sentToken;
    this.finished = false;
  }

  private get capped(): boolean {
    return this.placement.maxBatches > 0 && this.sent >= this.placement.maxBatches;
  }

  /** True while the next step waits for the report of step next − lag_steps (policy streams only). */
  get waiting(): boolean {
    return !this.finished && !this.capped && this.plan.waiting(this.step);
  }

  /** The policy now, for the status page and /metrics; undefined without one. */
  policyView(): PolicyView | undefined {
    return this.plan.policyView();
  }

  /** The next message (planned in one go, built at once); undefined once the stream has ended, or while it is `waiting` for a report. */
  next(): WireResponse | undefined {
    const g = this.planNext();
    for (;;) {
      const r = g.next();
      if (r.done) return r.value && 'planned' in r.value ? this.build(r.value, this.plan.totalSteps) : r.value;
    }
  }

  /**
   * The next message, planned in slices: after every slice that took over `sliceMs`, `pause()` is
   * awaited (setImmediate in the server), so a step of world_size × batch_size rows never holds
   * the event loop for long: health, metrics and other streams are served in between.
   *
   * With `reads` (SessionInit) nothing is read on the spot: the step is planned strictly, its
   * likely pages read ahead and a missed page read while it is planned again (plan-reads.ts
   * `planStrictly`). Then the seam between planning and building: `ready` is awaited with this
   * rank's rows before the batch is built. That is where the pages the batch needs are read
   * together and held; once they are, the reads of the next steps start (`reads.following`), in
   * flight while this batch is built and sent. `next()` plans and builds at once, reading on the spot.
   */
  async nextAsync(pause: () => Promise<void>, sliceMs = SLICE_MS): Promise<WireResponse | undefined> {
    const reads = this.reads;
    // Pages read ahead for planning and pages it missed: held until the batch is built.
    const held: Held[] = [];
    try {
      // Another rank of the job is planning this very step: its plan is taken, not made again.
      for (let other = this.plan.elsewhere?.(this.step); other; other = this.plan.elsewhere?.(this.step)) await other;
      const mark = this.mark;
      const { value, total } = reads
        ? await planStrictly(
            reads,
            {
              from: () => this.plan.token(this.step),
              plan: () => this.planSliced(pause, sliceMs),
              back: (from) => this.rewind({ ...mark, token: from }, mark.token),
              upcoming: (depth) => (this.finished ? undefined : this.plan.upcoming?.(depth)),
            },
            held,
          )
        : await this.planSliced(pause, sliceMs);
      if (!value || !('planned' in value)) return value;
      let pages: Held | undefined;
      try {
        pages = await this.ready?.(this.mine(value.planned));
      } catch (err) {
        // The step cannot be built (its pages could not be read after retries): the stream
        // ends with that error; its client resumes from the last token it was sent.
        this.finished = true;
        throw err;
      }
      if (reads && reads.steps > 0) reads.following(this.plan.upcoming?.(reads.steps));
      try {
        return this.build(value, total);
      } finally {
        pages?.release();
      }
    } finally {
      for (const h of held) h.release();
    }
  }

  /** The next step planned in slices (strictly with `reads`), with the stream's step count (an evaluation's, replayed once). */
  private async planSliced(
    pause: () => Promise<void>,
    sliceMs: number,
  ): Promise<{ value: Planned | WireResponse | undefined; total: number }> {
    const strictly = <T>(fn: () => T): T => (this.reads ? this.reads.strictly(fn) : fn());
    const g = this.planNext();
    let since = performance.now();
    for (;;) {
      const r = strictly(() => g.next());
      if (r.done) {
        const planned = r.value !== undefined && 'planned' in r.value;
        return { value: r.value, total: planned ? strictly(() => this.plan.totalSteps) : 0 };
      }
      if (performance.now() - since >= sliceMs) {
        await pause();
        since = performance.now();
      }
    }
  }

  /** The next step planned for all ranks (yielding between slices of rows), or the end, or nothing (ended or waiting). */
  private *planNext(): Generator<void, Planned | WireResponse | undefined> {
    if (this.finished) return undefined;
    if (this.capped) return this.end('max_batches');
    if (this.plan.done) return this.end('complete');
    if (this.waiting) return undefined;
    const step = this.step;
    const cached = this.plan.begin(step);
    if (cached) {
      this.step++;
      return { step, planned: cached };
    }
    const want = this.placement.worldSize * this.spec.batchSize;
    const rows: Segment[][] = [];
    while (rows.length < want) {
      const began = performance.now();
      const got = this.plan.rows(Math.min(this.rowsPerCall, want - rows.length));
      // Long rows (seq_len 8192, packed) take ms each: fewer per call keeps a slice near SLICE_MS.
      // Rows planned are the same however many a call asks for.
      const took = performance.now() - began;
      if (took > SLICE_MS) this.rowsPerCall = Math.max(1, Math.floor((this.rowsPerCall * SLICE_MS) / took));
      else if (took < SLICE_MS / 4) this.rowsPerCall = Math.min(ROWS_PER_SLICE, this.rowsPerCall * 2);
      for (const row of got) rows.push(row);
      if (got.length === 0 || rows.length >= want) break;
      yield;
    }
    this.step++;
    return { step, planned: this.plan.finish(step, rows) };
  }

  /** This rank's rows of a planned step. */
  private mine(planned: PlannedStep): Segment[][] {
    const { rank } = this.placement;
    const { batchSize } = this.spec;
    return planned.rows.slice(rank * batchSize, (rank + 1) * batchSize);
  }

  /** This rank's batch of a planned step. */
  private build({ step, planned }: Planned, totalSteps: number): WireResponse {
    // What fits no row is said on the first batch of every call, so a trainer learns it before spending compute.
    const dropped = this.sent === 0 ? this.plan.dropped() : undefined;
    const { placement, spec } = this;
    const fingerprint = this.heldout.fingerprint;
    const header = { step, planned, placement, spec, fingerprint, totalSteps, dropped };
    const msg = batchMessage(this.layout, this.mine(planned), this.taskDomain, this.asExamples, header);
    this.sent++;
    this.lastToken = planned.token;
    return msg;
  }

  /** Ends the stream; `shutdown` hands the client the token of the last batch it was sent. */
  end(reason: WireEnd['reason']): WireResponse {
    this.finished = true;
    this.reads?.clear();
    return endMessage(this.plan.end(), this.lastToken, reason);
  }
}
