import { DOMAINS } from '../corpus/record-schema.js';
import { InvalidArgumentError } from '../errors.js';
import { packingStrategy } from '../pack/registry.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { buildBatch, buildExamples, messageRoom } from './batch-builder.js';
import type { EvalItems } from './eval-items.js';
import { EvalPlanner, type EvalState } from './eval-planner.js';
import type { PlanCache, PlannedStep } from './plan-cache.js';
import type { LossReport, PolicyState } from '../mix/policy/policy-runner.js';
import { ReportWindow } from './report-window.js';
import { decodeToken, encodeToken } from './resume-token.js';
import { specHash, type MixtureUpdate, type Placement, type StreamSpec } from './stream-spec.js';
import { checksum } from '../util/hash.js';
import { countsSince } from './share-window.js';
import type { TrainPlanner, TrainState } from './train-planner.js';
import type { WireEnd, WireResponse, WireStats } from './wire-types.js';

/** What the status page and /metrics show of a stream's policy. */
export interface PolicyView {
  readonly name: string;
  /** The arms: selectors (or domains) the policy reweights. */
  readonly selectors: readonly string[];
  /** The policy's current weight per arm. */
  readonly weights: readonly number[];
  /** Mean token loss per arm in the window of the last decision (null: none reported). */
  readonly losses: readonly (number | null)[];
  readonly decisions: number;
  readonly lastReportStep: number | null;
}
/** Rows planned between checks of the clock in nextAsync. */
const ROWS_PER_SLICE = 64;
/** Longest stretch of planning before the event loop gets a turn. */
const SLICE_MS = 10;

/** A stream's position after a message: what `rewind` returns to. */
export interface SessionMark {
  readonly token: Buffer;
  readonly step: number;
  readonly sent: number;
}

export type Planner = { kind: 'train'; planner: TrainPlanner } | { kind: 'eval'; planner: EvalPlanner; items: EvalItems };

export interface SessionInit {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  readonly indexFingerprint: string;
  /** server.token_key: tokens are HMAC-signed with it ('' = unsigned). */
  readonly tokenKey: string;
  readonly layout: SegmentLayout;
  readonly plan: Planner;
  /** The next global step to build. */
  readonly step: number;
  /** Train steps shared with the job's other rank streams on this server (see plan-cache.ts). */
  readonly shared?: {
    readonly cache: PlanCache;
    /** A planner in the state a token of this stream describes. */
    readonly restore: (token: Buffer) => TrainPlanner;
  };
}

/**
 * One client's stream: plans each global step (world_size × batch_size rows), materializes only
 * this rank's rows, and attaches the resume token that continues right after the batch.
 * Building is synchronous and on demand, so a slow client holds at most what gRPC buffers.
 */
export class StreamSession {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  /** Hashed once: every batch's token carries it, and the spec never changes within a stream. */
  private readonly specHash: string;
  private readonly init: SessionInit;
  private step: number;
  private sent = 0;
  private finished = false;
  private lastToken: Buffer;
  private readonly taskDomain: Int32Array;
  /** The plan cache, for a train stream of a multi-rank job (a single rank has no one to share with). */
  private readonly plans: SessionInit['shared'];
  /** Digest of the state the next step is planned from: the plan cache's key (with `plans` only). */
  private stateKey = '';
  /** The planner lags behind `lastToken` after steps taken from the plan cache. */
  private plannerStale = false;
  /** The trainer's loss reports until the steps they feed are planned (train streams). */
  private readonly reports: ReportWindow;
  /** Evaluation streams: this rank's examples and the set's dropped items over the whole stream, and its step count (replayed once). */
  private replayed: { counts: number[]; dropped: number[]; steps: number } | undefined;
  /** A train step is being planned in slices (nextAsync); updates arriving meanwhile wait in `deferred`. */
  private planning = false;
  private readonly deferred: MixtureUpdate[] = [];

  constructor(init: SessionInit) {
    this.init = init;
    this.spec = init.spec;
    this.placement = init.placement;
    this.heldout = init.heldout;
    this.specHash = specHash(init.spec);
    this.step = init.step;
    this.taskDomain = Int32Array.from(init.layout.table.reader.tasks.map((t) => DOMAINS.indexOf(t.domain as (typeof DOMAINS)[number])));
    this.reports = new ReportWindow(init.plan.kind === 'train' ? init.spec.mixture.policy?.lagSteps : undefined, init.step);
    this.lastToken = this.token();
    this.plans = init.plan.kind === 'train' && init.placement.worldSize > 1 ? init.shared : undefined;
    if (this.plans) this.stateKey = checksum(this.lastToken);
  }

  /** A train stream (mixture updates, loss reports and `rewind` apply to these only). */
  get train(): boolean {
    return this.init.plan.kind === 'train';
  }

  get nextStep(): number {
    return this.step;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The token of the last batch sent (or of the start), for a client being drained. */
  get resumeToken(): Buffer {
    return this.lastToken;
  }

  addUpdate(u: MixtureUpdate): void {
    // A client error, not an internal one: it must reach the client as INVALID_ARGUMENT.
    if (this.init.plan.kind !== 'train') throw new InvalidArgumentError('mixture_update', `mixture updates apply to split "train" only; the ${this.spec.split} split is served whole and in order`);
    if (this.planning) {
      if (u.applyAtStep <= this.step) throw new InvalidArgumentError('mixture_update.apply_at_step', `step ${u.applyAtStep} is being built (next step is ${this.step + 1}); send updates for a later step`);
      this.deferred.push(u);
      return;
    }
    this.trainPlanner().addUpdate(u, this.step);
    // The pending update is part of the state now: only streams that queued the same update at
    // the same step share the steps from here on.
    if (this.plans) this.stateKey = checksum(this.token());
  }

  /**
   * A checked loss report (loss-report.ts) of a step this stream served; see report-window.ts.
   * `next`: the first step not sent yet, when that is behind the next step to plan (a build
   * worker planning ahead of what the server thread sent).
   */
  addReport(r: LossReport, next = this.step): void {
    if (this.init.plan.kind !== 'train') throw new InvalidArgumentError('losses', `loss reports apply to split "train" only; the ${this.spec.split} split is an evaluation stream`);
    this.reports.add(r, next);
  }

  /** Where the stream stands after its last message, for `rewind` (a build worker keeps one per batch built ahead). */
  get mark(): SessionMark {
    return { token: this.lastToken, step: this.step, sent: this.sent };
  }

  /**
   * Back to a mark of this train stream, as if the messages after it were never built: the
   * planner is restored from the mark's token (exact, like a resume), reports already taken stay
   * (report-window.ts keeps what a rebuilt step consumes). A build worker rewinds the batches it
   * built ahead when a mixture update arrives after the server thread sent the mark's batch.
   */
  rewind(to: SessionMark): void {
    const { plan, shared } = this.init;
    if (plan.kind !== 'train' || !shared || this.planning) throw new Error('only a train stream between steps can be rewound');
    plan.planner = shared.restore(to.token);
    this.plannerStale = false;
    this.step = to.step;
    this.sent = to.sent;
    this.lastToken = to.token;
    this.finished = false;
    if (this.plans) this.stateKey = checksum(to.token);
  }

  /** True while the next step waits for the report of step next − lag_steps (policy streams only). */
  get waiting(): boolean {
    if (this.finished || (this.placement.maxBatches > 0 && this.sent >= this.placement.maxBatches)) return false;
    return this.reports.waiting(this.step);
  }

  /** The policy as of the last batch sent, for the status page and /metrics (decoded from its token: call it when scraped, not per batch). */
  policyView(): PolicyView | undefined {
    const policy = this.init.plan.kind === 'train' ? this.spec.mixture.policy : undefined;
    if (!policy) return undefined;
    const plan = this.init.plan as Extract<Planner, { kind: 'train' }>;
    const state = (decodeToken(this.lastToken, this.init.indexFingerprint, this.init.tokenKey).state as { policy: PolicyState }).policy;
    return {
      name: policy.name,
      selectors: plan.planner.policy?.arms.selectors ?? [],
      weights: state.weights,
      losses: state.seen.map((l) => (l < 0 ? null : l)),
      decisions: state.n,
      lastReportStep: this.reports.last?.step ?? null,
    };
  }

  /** The train planner, first brought up to `lastToken` if steps came from the plan cache. */
  private trainPlanner(): TrainPlanner {
    const plan = this.init.plan as Extract<Planner, { kind: 'train' }>;
    if (this.plannerStale && this.plans) {
      plan.planner = this.plans.restore(this.lastToken);
      this.plannerStale = false;
    }
    return plan.planner;
  }

  private token(): Buffer {
    const { plan } = this.init;
    const state: TrainState | EvalState = plan.planner.state();
    return encodeToken({
      index: this.init.indexFingerprint,
      heldout: this.heldout.fingerprint,
      specHash: this.specHash,
      spec: this.spec,
      step: this.step,
      worldSize: this.placement.worldSize,
      state,
    }, this.init.tokenKey);
  }

  /**
   * This step for all ranks: from the plan cache when another rank planned it, else planned here,
   * ROWS_PER_SLICE rows at a time with a yield in between (see nextAsync).
   */
  private *planStep(): Generator<void, PlannedStep> {
    const rows = this.placement.worldSize * this.spec.batchSize;
    const { plan } = this.init;
    const planned: Segment[][] = [];
    if (plan.kind === 'eval') {
      while (planned.length < rows && !plan.planner.done) {
        for (const row of plan.planner.planStep(Math.min(ROWS_PER_SLICE, rows - planned.length))) planned.push(row);
        yield;
      }
      this.step++;
      return { rows: planned, token: this.token(), stats: this.stats() };
    }
    // With a policy the step also depends on the report it consumes: ranks share it only if theirs agree.
    const report = this.reports.feeding(this.step);
    const key = this.reports.lag === undefined ? this.stateKey : `${this.stateKey}:${report?.digest ?? '-'}`;
    const cached = this.plans?.cache.take(key);
    if (cached) {
      this.advance();
      this.plannerStale = true;
      return cached;
    }
    const planner = this.trainPlanner();
    planner.beginStep(this.step, report?.report);
    this.planning = true;
    try {
      while (planned.length < rows) {
        for (const row of planner.planRows(Math.min(ROWS_PER_SLICE, rows - planned.length))) planned.push(row);
        if (planned.length < rows) yield;
      }
    } finally {
      this.planning = false;
    }
    this.advance();
    const step = { rows: planned, token: this.token(), stats: this.stats() };
    this.plans?.cache.put(key, step, this.placement.worldSize);
    // Updates that arrived while the step was being planned count from the next message on, as
    // if they had arrived just after it (this step's token was made without them).
    for (const u of this.deferred.splice(0)) this.addUpdate(u);
    return step;
  }

  /** Moves past a planned train step (the report it consumed is forgotten by the next add, see report-window.ts). */
  private advance(): void {
    this.step++;
  }

  /** The next message (planned in one go); undefined once the stream has ended, or while it is `waiting` for a report. */
  next(): WireResponse | undefined {
    const g = this.message();
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The next message, planned in slices: after every slice that took over `sliceMs`, `pause()` is
   * awaited (setImmediate in the server), so a step of world_size × batch_size rows never holds
   * the event loop for long: health, metrics and other streams are served in between.
   */
  async nextAsync(pause: () => Promise<void>, sliceMs = SLICE_MS): Promise<WireResponse | undefined> {
    const g = this.message();
    let since = performance.now();
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      if (performance.now() - since >= sliceMs) {
        await pause();
        since = performance.now();
      }
    }
  }

  private *message(): Generator<void, WireResponse | undefined> {
    if (this.finished) return undefined;
    const { plan } = this.init;
    if (this.placement.maxBatches > 0 && this.sent >= this.placement.maxBatches) return this.end('max_batches');
    if (plan.kind === 'eval' && plan.planner.done) return this.end('complete');
    if (this.waiting) return undefined;
    const step = this.step;
    const planned = yield* this.planStep();
    const { rank } = this.placement;
    const { batchSize } = this.spec;
    const mine = planned.rows.slice(rank * batchSize, (rank + 1) * batchSize);
    const layout = this.init.layout;
    const asExamples = packingStrategy(this.spec.packing).sendsExamples;
    const body = buildBatch(layout, asExamples ? [] : mine, this.taskDomain, messageRoom(planned.token, planned.stats, this.heldout.fingerprint));
    this.sent++;
    this.lastToken = planned.token;
    if (this.plans) this.stateKey = checksum(planned.token);
    return {
      batch: {
        ...body,
        step,
        rank,
        worldSize: this.placement.worldSize,
        batchSize: mine.length,
        seqLen: this.spec.seqLen,
        resumeToken: this.lastToken,
        stats: planned.stats,
        heldoutFingerprint: this.heldout.fingerprint,
        examples: asExamples ? buildExamples(layout, mine) : [],
        totalSteps: plan.kind === 'eval' ? this.replay(plan.items).steps : 0,
      },
    };
  }

  /** Ends the stream; `shutdown` hands the client the token of the last batch it was sent. */
  end(reason: WireEnd['reason']): WireResponse {
    this.finished = true;
    const tasks = this.init.layout.table.reader.tasks.length;
    const { plan } = this.init;
    const replayed = plan.kind === 'eval' ? this.replay(plan.items) : undefined;
    const mine = replayed?.counts ?? Array.from({ length: tasks }, () => 0);
    const totals = plan.kind === 'eval' ? plan.items.perTask : Array.from({ length: tasks }, () => 0);
    return {
      end: {
        taskExamples: mine,
        totalTaskExamples: [...totals],
        examples: mine.reduce((a, b) => a + b, 0),
        totalExamples: totals.reduce((a, b) => a + b, 0),
        resumeToken: this.lastToken,
        reason,
        taskDropped: replayed?.dropped ?? Array.from({ length: tasks }, () => 0),
      },
    };
  }

  /**
   * Examples this rank is given over the whole evaluation stream, the set's dropped items and the
   * stream's step count, replayed from its start once per session (the first batch needs the step
   * count, the end the counts).
   */
  private replay(items: EvalItems): { counts: number[]; dropped: number[]; steps: number } {
    if (this.replayed) return this.replayed;
    const replay = new EvalPlanner(items, this.init.layout, this.spec);
    const counts = items.perTask.map(() => 0);
    const { rank, worldSize } = this.placement;
    const B = this.spec.batchSize;
    let steps = 0;
    while (!replay.done) {
      const rows = replay.planStep(worldSize * B).slice(rank * B, (rank + 1) * B);
      steps++;
      for (const row of rows) for (const seg of row) for (const t of seg.turns) counts[t.loc.task] = (counts[t.loc.task] ?? 0) + 1;
    }
    this.replayed = { counts, dropped: replay.totals.dropped, steps };
    return this.replayed;
  }

  private stats(): WireStats {
    const { plan } = this.init;
    const totals = plan.planner.totals;
    const train = plan.kind === 'train' ? plan.planner : undefined;
    const target = train ? Array.from(train.targets) : totals.examples.map(() => 0);
    const shares = train?.shareState;
    const sinceUpdate = shares ? countsSince(totals.examples, shares.atUpdate) : [];
    const recent = shares ? countsSince(totals.examples, shares.atWindowStart) : [];
    const domainExamples = DOMAINS.map(() => 0);
    const domainTarget = DOMAINS.map(() => 0);
    const rate = this.init.layout.table.reader.manifest.vocab.frameRate;
    const domainAudioSeconds = rate > 0 ? DOMAINS.map(() => 0) : [];
    const domainSinceUpdate = shares ? DOMAINS.map(() => 0) : [];
    const domainRecent = shares ? DOMAINS.map(() => 0) : [];
    totals.examples.forEach((n, t) => {
      const d = this.taskDomain[t] ?? 0;
      domainExamples[d] = (domainExamples[d] ?? 0) + n;
      domainTarget[d] = (domainTarget[d] ?? 0) + (target[t] ?? 0);
      if (rate > 0) domainAudioSeconds[d] = (domainAudioSeconds[d] ?? 0) + (totals.audioFrames[t] ?? 0) / rate;
      if (shares) {
        domainSinceUpdate[d] = (domainSinceUpdate[d] ?? 0) + (sinceUpdate[t] ?? 0);
        domainRecent[d] = (domainRecent[d] ?? 0) + (recent[t] ?? 0);
      }
    });
    // Copies: the planner keeps counting into its arrays while gRPC may still hold this batch
    // unserialized in its write buffer.
    return {
      taskExamples: [...totals.examples],
      taskTextTokens: [...totals.textTokens],
      taskAudioTokens: [...totals.audioTokens],
      taskTarget: target,
      domainExamples,
      domainTarget,
      paddingTokens: totals.padding,
      dropped: totals.dropped.reduce((a, b) => a + b, 0),
      truncated: totals.truncated.reduce((a, b) => a + b, 0),
      taskDropped: [...totals.dropped],
      taskTruncated: [...totals.truncated],
      sinceUpdateStep: shares?.updateStep ?? 0,
      taskExamplesSinceUpdate: sinceUpdate,
      domainExamplesSinceUpdate: domainSinceUpdate,
      windowStartStep: shares?.windowStart ?? 0,
      taskExamplesWindow: recent,
      domainExamplesWindow: domainRecent,
      taskEpochs: train ? [...train.epochs] : [],
      domainAudioSeconds,
    };
  }
}
