import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { Sampler, type SamplerState } from '../mix/sampler.js';
import { TaskWalker, type WalkerState } from '../mix/task-walker.js';
import { SparseWalk, type RecordSubset } from '../mix/sparse-walk.js';
import type { MixtureSpec } from '../mix/mixture.js';
import { policyArms } from '../mix/policy/arms.js';
import { PolicyRunner, type LossReport, type PolicyState } from '../mix/policy/policy-runner.js';
import { DOMAINS } from '../corpus/record-schema.js';
import type { TrainPacker } from '../pack/packing.js';
import { packingStrategy } from '../pack/registry.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { Contamination } from '../splits/contamination.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { ExampleTable } from '../index/example-table.js';
import type { Servability } from './servable.js';
import { DEFAULT_SHARE_WINDOW, ShareWindow, type ShareState } from './share-window.js';
import { countRow, emptyStats, type StreamStats } from './stream-stats.js';
import { MAX_PENDING_UPDATES, type MixtureUpdate, type StreamSpec } from './stream-spec.js';
import { checkTrainState, refuse } from './token-state-check.js';
import { blockShapes } from './shuffle-spec.js';

/** Draws of one task given back in a row before the stream asks whether the task has few servable records (see servable.ts). */
const MISSES_BEFORE_SEEK = 16;

/** Everything a train stream has to remember between batches (it goes into the resume token). */
export interface TrainState {
  readonly sampler: SamplerState;
  readonly walker: WalkerState;
  /** Packing window leftovers: per unit [turns, task, i, task, i, …]. */
  readonly pool: number[];
  readonly stats: StreamStats;
  readonly mixture: MixtureSpec;
  readonly pending: MixtureUpdate[];
  /** Streams whose mixture has a policy (absent otherwise, so other tokens are unchanged). */
  readonly policy?: PolicyState;
  /** Baselines of the realized shares since the last update and over the recent window (absent in older tokens). */
  readonly shares?: ShareState;
}

export interface TrainDeps {
  readonly spec: StreamSpec;
  readonly layout: SegmentLayout;
  readonly table: ExampleTable;
  readonly heldout: ResolvedHeldout;
  /** The held-out set's guards: train records they remove are never served. */
  readonly filter: Contamination | undefined;
  /** Which tasks have a record this stream can serve (from the index, for its seq_len and overlong policy). */
  readonly servable: Servability;
  readonly resolve: (m: MixtureSpec, field: string) => Float64Array;
  /** Steps per block of the recent-share window (see share-window.ts). */
  readonly shareWindow?: number;
}

/**
 * Plans the global train stream row by row: sampler + walker + packer. The sampler picks a task,
 * the task's permutation picks a record, and the stream's packing strategy (src/pack) turns drawn
 * records into units and fills rows with them. The row sequence does not depend on world size; a
 * global step is world_size × batch_size rows.
 */
export class TrainPlanner {
  private readonly deps: TrainDeps;
  private readonly sampler: Sampler;
  private readonly walker: TaskWalker;
  private readonly packer: TrainPacker;
  private readonly stats: StreamStats;
  private mixture: MixtureSpec;
  private pending: MixtureUpdate[];
  private readonly sizes: Float64Array;
  /** The stream's closed-loop policy, if its mixture names one. */
  readonly policy: PolicyRunner | undefined;
  private readonly shares: ShareWindow;
  /** Per task: its servable subset once it kept missing (null: not sparse; undefined: not asked). */
  private readonly subsets: (RecordSubset | null | undefined)[] = [];
  private readonly sparse: SparseWalk;

  /** `state` comes from a resume token: `step` is the token's step (checked against pending updates). */
  constructor(deps: TrainDeps, state?: TrainState, step = 0) {
    this.deps = deps;
    const tasks = deps.table.reader.tasks.length;
    this.sizes = new Float64Array(tasks);
    for (let t = 0; t < tasks; t++) this.sizes[t] = deps.heldout.tasks.has(t) ? 0 : deps.table.size(t);
    if (state) checkTrainState(state, { spec: deps.spec, step, table: deps.table, sizes: this.sizes, filter: deps.filter, resolve: deps.resolve });
    this.mixture = state?.mixture ?? deps.spec.mixture;
    this.sampler = new Sampler(deps.resolve(this.mixture, 'mixture'), state?.sampler);
    this.walker = new TaskWalker(this.sizes, deps.spec.seed, state?.walker, blockShapes(deps.spec.shuffle, deps.table.reader.tasks));
    this.sparse = new SparseWalk(this.walker);
    this.stats = state ? structuredClone(state.stats) : emptyStats(tasks);
    this.shares = new ShareWindow(tasks, deps.shareWindow ?? DEFAULT_SHARE_WINDOW, state?.shares, this.stats.examples);
    this.pending = state ? [...state.pending] : [];
    const train = packingStrategy(deps.spec.packing).train;
    // parseSpec admits an evaluation-only strategy for evaluation splits only.
    if (!train) throw new Error(`packing "${deps.spec.packing}" has no train packer`);
    this.packer = train({
      window: deps.spec.window,
      pending: state ? this.restorePool(state.pool) : [],
      conversation: {
        layout: deps.layout,
        seed: deps.spec.seed,
        seqLen: deps.spec.seqLen,
        maxTurns: deps.spec.maxTurns,
        joinable: (t) => (this.sizes[t] ?? 0) > 0 && (this.sampler.targets[t] ?? 0) > 0,
        excluded: (shard, row) => deps.filter?.excluded(shard, row) ?? false,
        credit: (t) => this.sampler.credit(t),
      },
    });
    const policy = deps.spec.mixture.policy;
    if (policy) {
      const arms = policyArms(deps.spec.mixture, deps.table.reader.tasks, deps.resolve(deps.spec.mixture, 'mixture'), DOMAINS);
      this.policy = new PolicyRunner(policy, arms, state?.policy);
    }
  }

  /** The packing window from its token form (already checked by checkTrainState). */
  private restorePool(flat: number[]): Segment[] {
    const out: Segment[] = [];
    for (let at = 0; at < flat.length; ) {
      const unitAt = at;
      const n = flat[at++] ?? 0;
      const turns = [];
      for (let k = 0; k < n; k++, at += 2) turns.push(this.deps.layout.turn(this.deps.table.locate(flat[at]!, flat[at + 1]!), k > 0));
      const fit = n === 1 ? this.deps.layout.fit(turns[0]!.loc, this.deps.spec.seqLen, this.deps.spec.overlong)?.segment : undefined;
      const unit = fit ?? { turns, length: this.deps.layout.segmentLength(turns) };
      if (unit.length > this.deps.spec.seqLen) refuse(`resume.token.state.pool[${unitAt}]`, `names a unit of ${unit.length} tokens, longer than seq_len = ${this.deps.spec.seqLen}`);
      out.push(unit);
    }
    return out;
  }

  get targets(): Float64Array {
    return this.sampler.targets;
  }

  get totals(): StreamStats {
    return this.stats;
  }

  /** Baselines of the realized shares since the last update and over the recent window. */
  get shareState(): ShareState {
    return this.shares.snapshot;
  }

  /** Per task: completed passes over its record permutation (the live array; copy before keeping). */
  get epochs(): readonly number[] {
    return this.walker.epochCounts;
  }

  /** Queues a live update; `nextStep` is the first step not yet planned. */
  addUpdate(u: MixtureUpdate, nextStep: number): void {
    if (u.applyAtStep < nextStep) {
      throw new InvalidArgumentError('mixture_update.apply_at_step', `step ${u.applyAtStep} was already built (next step is ${nextStep}); send updates for a later step`);
    }
    this.queue(u, 'mixture_update');
  }

  /** Validates and queues an update (the last one for a step wins); the queue is bounded so tokens stay small. */
  private queue(u: MixtureUpdate, field: string): void {
    if (typeof u !== 'object' || u === null || !Number.isSafeInteger(u.applyAtStep) || typeof u.mixture !== 'object' || u.mixture === null) {
      throw new InvalidArgumentError(field, 'a pending mixture update is malformed');
    }
    this.deps.resolve(u.mixture, field);
    const pending = [...this.pending.filter((p) => p.applyAtStep !== u.applyAtStep), u].sort((a, b) => a.applyAtStep - b.applyAtStep);
    if (pending.length > MAX_PENDING_UPDATES) throw new ResourceExhaustedError('pending mixture updates', pending.length, MAX_PENDING_UPDATES);
    this.pending = pending;
  }

  /**
   * Begins global step `step`: takes in the report and applies the updates due at it; the step's
   * rows follow with planRows (in any chunks). With a policy, `report` is the trainer's report of
   * step step − lag_steps (undefined if it sent none): the policy takes it in first, and a decision
   * it makes applies from this very step, like a manual update queued for it, unless one was.
   */
  beginStep(step: number, report?: LossReport): void {
    this.shares.beginStep(step, this.stats.examples);
    const s = step - (this.policy?.spec.lagSteps ?? 0);
    const decided = this.policy && s >= 0 ? this.policy.consume(s, report) : undefined;
    if (decided && !this.pending.some((u) => u.applyAtStep === step)) this.queue({ mixture: this.policy!.mixture(this.mixture, decided), applyAtStep: step }, 'policy');
    if (this.pending[0] && this.pending[0].applyAtStep <= step) this.shares.updateApplied(step, this.stats.examples);
    while (this.pending[0] && this.pending[0].applyAtStep <= step) {
      const u = this.pending.shift()!;
      this.mixture = u.mixture;
      const target = this.deps.resolve(u.mixture, 'mixture_update');
      this.sampler.setTarget(target);
      // Units drawn earlier but still in the packing window are served from this step on. Those of
      // tasks the update silences leave the window (their records wait for the next epoch); the
      // rest count against the new target, so what is served from apply_at_step on follows it.
      this.packer.retain((unit) => unit.turns.every((t) => (target[t.loc.task] ?? 0) > 0));
      for (const unit of this.packer.pending) for (const t of unit.turns) this.sampler.credit(t.loc.task);
    }
  }

  /** The next `rows` rows of the step begun last. */
  planRows(rows: number): Segment[][] {
    return Array.from({ length: rows }, () => {
      const row = this.packer.row(this.deps.spec.seqLen, () => this.drawUnit());
      countRow(this.stats, this.deps.layout, row, this.deps.spec.seqLen);
      return row;
    });
  }

  /**
   * The next unit from the sampler. A record that cannot be used (over-long under `drop`, or
   * removed by a guard of the held-out set) is given back to the sampler and counted, so realized
   * proportions follow the target over what is actually served. Drawing goes on while the task
   * has a servable record at all (known from the index): its walk meets one within two epochs,
   * however few there are and wherever the permutations put them.
   */
  protected drawUnit(): Segment {
    const { spec, table, layout, filter, servable } = this.deps;
    for (let misses = 0; ; misses++) {
      const t = this.sampler.next();
      // A task that keeps missing may have few servable records: then its walk seeks straight to
      // the next one, passing over (and counting) the records between as rejection would.
      if (misses >= MISSES_BEFORE_SEEK && this.subsets[t] === undefined) this.subsets[t] = servable.subset(t) ?? null;
      const subset = this.subsets[t];
      if (subset && servable.has(t)) this.stats.dropped[t] = (this.stats.dropped[t] ?? 0) + this.sparse.skip(t, subset);
      const loc = table.locate(t, this.walker.next(t));
      const fit = filter?.excluded(loc.shard, loc.row) ? undefined : layout.fit(loc, spec.seqLen, spec.overlong);
      if (fit) {
        if (fit.truncated) this.stats.truncated[t] = (this.stats.truncated[t] ?? 0) + 1;
        return this.packer.unit(fit);
      }
      if (!filter?.excluded(loc.shard, loc.row)) this.stats.dropped[t] = (this.stats.dropped[t] ?? 0) + 1;
      this.sampler.undo(t);
      if (!servable.has(t)) {
        const path = table.reader.tasks[t]?.path ?? String(t);
        throw new FailedPreconditionError('nothing_to_serve', `no train record of task ${path} can be served: all are longer than seq_len=${spec.seqLen} (overlong=${spec.overlong}) or are removed by the held-out set's guards (datasets, shared audio, overlapping text); raise seq_len or give the task weight 0`);
      }
    }
  }

  /** The state to encode into a resume token right away: it shares the planner's live stats. */
  state(): TrainState {
    const pool: number[] = [];
    for (const u of this.packer.pending) {
      pool.push(u.turns.length);
      for (const t of u.turns) pool.push(t.loc.task, t.loc.i);
    }
    const base = { sampler: this.sampler.state(), walker: this.walker.state(), pool, stats: this.stats, mixture: this.mixture, pending: this.pending, shares: this.shares.snapshot };
    return this.policy ? { ...base, policy: this.policy.state() } : base;
  }
}
