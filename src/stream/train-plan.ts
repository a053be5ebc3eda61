import { InvalidArgumentError } from '../errors.js';
import type { RecordRef } from '../index/record-pages.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import { checksum } from '../util/hash.js';
import type { PlanCache, PlannedStep } from './plan-cache.js';
import { lossSaying, updateSaying, type ReportAgreement, type Saying } from './report-agreement.js';
import { ReportWindow } from './report-window.js';
import type { TokenMint } from './resume-token.js';
import type { DroppedItems, EndFigures, PolicyView, StreamPlan, Upcoming } from './stream-plan.js';
import type { MixtureUpdate, StreamSpec } from './stream-spec.js';
import { taskDomains, wireStats } from './stream-stats.js';
import type { TrainPlanner } from './train-planner.js';

export interface TrainPlanInit {
  readonly spec: StreamSpec;
  readonly layout: SegmentLayout;
  readonly planner: TrainPlanner;
  /** A planner in the state (before `step`) that a token of this stream carries. */
  readonly restore: (state: unknown, step: number) => TrainPlanner;
  readonly mint: TokenMint;
  /** The next global step to plan. */
  readonly step: number;
  /** The job's world size, and the plan cache its rank streams on this server share (used when world_size > 1). */
  readonly worldSize: number;
  readonly cache: PlanCache;
  /** Where the job's ranks on this server check that they report alike (used when world_size > 1). */
  readonly agreement: { readonly ledger: ReportAgreement; readonly job: string; readonly rank: number };
}

/**
 * A train stream's plan: the train planner (rows from the mixture), and around it what a step
 * depends on besides the planner: the trainer's loss reports until the step they feed
 * (report-window.ts), mixture updates that arrive while a step is being planned (they count from
 * the next step), and the steps the ranks of a multi-rank job share (plan-cache.ts).
 */
export class TrainPlan implements StreamPlan {
  readonly done = false;
  readonly totalSteps = 0;
  private readonly init: TrainPlanInit;
  private planner: TrainPlanner;
  private readonly reports: ReportWindow;
  /** Shared with the job's other ranks (a single rank has no one to share with). */
  private readonly cache: PlanCache | undefined;
  /** Digest of the state the next step is planned from: the plan cache's key (with `cache` only). */
  private stateKey = '';
  /** The key of the step begun. */
  private stepKey = '';
  /** The token after the last step: the planner lags behind it after steps taken from the plan cache. */
  private last: Buffer | undefined;
  private stale = false;
  /**
   * A token of the planner's state as it stands, while nothing changed that state since it was
   * made: the session asks for one before every step (what a page miss rewinds to), and the token
   * made when the last step finished is that token unless an update came since.
   */
  private fresh: { readonly next: number; readonly token: Buffer } | undefined;
  /** A step is begun and not finished (its rows are planned in slices); updates arriving meanwhile wait in `deferred`. */
  private planning = false;
  private readonly deferred: MixtureUpdate[] = [];
  private readonly domains: Int32Array;

  constructor(init: TrainPlanInit) {
    this.init = init;
    this.planner = init.planner;
    this.reports = new ReportWindow(init.spec.mixture.policy?.lagSteps, init.step);
    this.cache = init.worldSize > 1 ? init.cache : undefined;
    this.domains = taskDomains(init.layout);
    if (this.cache) this.stateKey = checksum(this.token(init.step));
  }

  waiting(next: number): boolean {
    return this.reports.waiting(next);
  }

  token(next: number): Buffer {
    if (this.fresh?.next === next) return this.fresh.token;
    const token = this.init.mint.make(next, this.current().state());
    if (!this.planning) this.fresh = { next, token };
    return token;
  }

  begin(step: number): PlannedStep | undefined {
    // Beginning a step changes the planner's state (also when a page miss interrupts it).
    this.fresh = undefined;
    this.stepKey = this.keyOf(step);
    const cached = this.cache?.take(this.stepKey);
    if (cached) {
      this.stale = true;
      this.passed(cached.token, step + 1);
      return cached;
    }
    // Other ranks arriving while this one reads the step's pages wait for its plan.
    this.cache?.claim(this.stepKey, this);
    this.current().beginStep(step, this.reports.feeding(step)?.report);
    this.planning = true;
    return undefined;
  }

  /** The plan-cache key of step `step` from the state now. */
  private keyOf(step: number): string {
    // With a policy the step also depends on the report it consumes: ranks share it only if theirs agree.
    if (this.reports.lag === undefined) return this.stateKey;
    return `${this.stateKey}:${this.reports.feeding(step)?.digest ?? '-'}`;
  }

  elsewhere(step: number): Promise<void> | undefined {
    return this.cache?.inFlight(this.keyOf(step), this);
  }

  rows(n: number): Segment[][] {
    return this.planner.planRows(n);
  }

  finish(step: number, rows: Segment[][]): PlannedStep {
    this.planning = false;
    const p = this.planner;
    const stats = wireStats(p.totals, this.domains, this.init.layout.table.reader.manifest.vocab.frameRate, {
      target: p.targets,
      shares: p.shareState,
      epochs: p.epochs,
    });
    const planned = { rows, token: this.init.mint.make(step + 1, p.state()), stats };
    this.cache?.put(this.stepKey, planned, this.init.worldSize, this.init.spec.seqLen);
    this.passed(planned.token, step + 1);
    // Updates that arrived while the step was being planned count from the next message on, as
    // if they had arrived just after it (this step's token was made without them).
    for (const u of this.deferred.splice(0)) this.addUpdate(u, step + 1);
    return planned;
  }

  /** The stream moved past a step whose token is `token` (the next step is `next`). */
  private passed(token: Buffer, next: number): void {
    this.last = token;
    this.fresh = { next, token };
    if (this.cache) this.stateKey = checksum(token);
  }

  end(): EndFigures {
    const zeros = (): number[] => this.init.layout.table.reader.tasks.map(() => 0);
    return { taskExamples: zeros(), totalTaskExamples: zeros(), taskDropped: zeros() };
  }

  dropped(): DroppedItems {
    return { perTask: [], fitSeqLen: 0 };
  }

  /**
   * Records the next steps will likely draw (see TrainPlanner.upcoming); none while the planner
   * lags behind steps taken from the plan cache (the rank planning them reads ahead for all).
   */
  upcoming(depth: number): Upcoming {
    if (this.stale) return { records: [], likely: 0 };
    const { pairs, likely } = this.planner.upcoming(depth);
    const table = this.init.layout.table;
    const records: (() => RecordRef)[] = [];
    for (let k = 0; k < pairs.length; k += 2) {
      const task = pairs[k]!;
      const i = pairs[k + 1]!;
      records.push(() => table.locate(task, i));
    }
    return { records, likely };
  }

  /**
   * Back to a token of this stream; a step begun and not finished is abandoned (its rows are
   * planned again from the token, the same ones). Updates deferred while it was planned stay.
   */
  rewind(token: Buffer): void {
    this.planning = false;
    const p = this.init.mint.read(token);
    this.planner = this.init.restore(p.state, p.step);
    this.stale = false;
    this.passed(token, p.step);
    // Back where the step began (a page miss): its claim stands; elsewhere, it is given up.
    if (this.cache && !this.stepKey.startsWith(this.stateKey)) this.cache.release(this);
  }

  addUpdate(u: MixtureUpdate, next: number): void {
    if (this.planning) {
      if (u.applyAtStep <= next)
        throw new InvalidArgumentError(
          'mixture_update.apply_at_step',
          `step ${u.applyAtStep} is being built (next step is ${next + 1}); send updates for a later step`,
        );
      this.deferred.push(u);
      return;
    }
    this.agree(() => updateSaying(u, this.init.agreement.rank));
    this.current().addUpdate(u, next);
    this.fresh = undefined;
    // The pending update is part of the state now: only streams that queued the same update at
    // the same step share the steps from here on.
    if (this.cache) this.stateKey = checksum(this.token(next));
  }

  addReport(r: LossReport, next: number): void {
    // Reports steer only a policy's plan: a static stream's are shown, and may differ harmlessly.
    if (this.reports.lag !== undefined)
      this.agree(() =>
        lossSaying(
          r,
          this.init.agreement.rank,
          this.init.layout.table.reader.tasks.map((t) => t.path),
        ),
      );
    this.reports.add(r, next);
  }

  /** Refuses what another rank of the job said otherwise for the same step (report-agreement.ts). */
  private agree(saying: () => Saying): void {
    if (this.init.worldSize > 1) this.init.agreement.ledger.say(this.init.agreement.job, this, saying());
  }

  close(): void {
    this.cache?.release(this);
    this.init.agreement.ledger.release(this);
  }

  policyView(): PolicyView | undefined {
    const policy = this.current().policy;
    if (!policy) return undefined;
    const state = policy.state();
    return {
      name: policy.spec.name,
      selectors: policy.arms.selectors,
      weights: state.weights,
      losses: state.seen.map((l) => (l < 0 ? null : l)),
      decisions: state.n,
      lastReportStep: this.reports.last?.step ?? null,
    };
  }

  /** The train planner, first brought up to the last token if steps came from the plan cache. */
  private current(): TrainPlanner {
    if (this.stale && this.last) {
      const p = this.init.mint.read(this.last);
      this.planner = this.init.restore(p.state, p.step);
      this.stale = false;
    }
    return this.planner;
  }
}
