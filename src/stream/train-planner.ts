import { FailedPreconditionError } from '../errors.js';
import { Sampler, type SamplerState } from '../mix/sampler.js';
import { TaskWalker, type WalkerState } from '../mix/task-walker.js';
import { SparseWalk, type RecordSubset } from '../mix/sparse-walk.js';
import type { MixtureSpec } from '../mix/mixture.js';
import { policyArms } from '../mix/policy/arms.js';
import { PolicyRunner, type LossReport, type PolicyState } from '../mix/policy/policy-runner.js';
import { refuse, STATE_FIELD } from '../mix/state-check.js';
import { DOMAINS } from '../corpus/record-schema.js';
import type { TrainPacker } from '../pack/packing.js';
import { pendingState, restorePending } from '../pack/pending-state.js';
import { packingStrategy } from '../pack/registry.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { RecordExclusion } from '../filter/record-filter.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { ExampleTable } from '../index/example-table.js';
import type { Servability } from './servable.js';
import { DEFAULT_SHARE_WINDOW, ShareWindow, type ShareState } from './share-window.js';
import { countRow, emptyStats, restoreStats, type StreamStats } from './stream-stats.js';
import { mixtureOf, PendingUpdates } from './pending-updates.js';
import type { MixtureUpdate, StreamSpec } from './stream-spec.js';
import { stateSections } from './resume-token.js';
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
  /** The held-out set's guards and the stream's filter: train records they remove are never served. */
  readonly filter: RecordExclusion | undefined;
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
  private readonly pending: PendingUpdates;
  private readonly sizes: Float64Array;
  /** The stream's closed-loop policy, if its mixture names one. */
  readonly policy: PolicyRunner | undefined;
  private readonly shares: ShareWindow;
  /** Per task: its servable subset once it kept missing (null: not sparse; undefined: not asked). */
  private readonly subsets: (RecordSubset | null | undefined)[] = [];
  private readonly sparse: SparseWalk;
  /** Records drawn per task in the step being planned (how far `upcoming` looks ahead), and whether a step was begun. */
  private drawn: Int32Array;
  private begun = false;

  /**
   * `state` comes from a resume token (client input: each section is checked by its owner as it
   * is restored); `step` is the token's step (the pending updates wait for steps from it on).
   */
  constructor(deps: TrainDeps, state?: unknown, step = 0) {
    this.deps = deps;
    const tasks = deps.table.reader.tasks.length;
    this.sizes = new Float64Array(tasks);
    for (let t = 0; t < tasks; t++) this.sizes[t] = deps.heldout.tasks.has(t) ? 0 : deps.table.size(t);
    const s = state === undefined ? undefined : stateSections(state, 'train');
    const field = (section: string): string => `${STATE_FIELD}.${section}`;
    this.mixture = s ? mixtureOf(s.mixture, field('mixture')) : deps.spec.mixture;
    this.sampler = new Sampler(deps.resolve(this.mixture, s ? field('mixture') : 'mixture'));
    if (s) this.sampler.restore(s.sampler, field('sampler'));
    this.walker = new TaskWalker(
      this.sizes,
      deps.spec.seed,
      undefined,
      blockShapes(deps.spec.shuffle, deps.table.reader.tasks),
    );
    if (s) this.walker.restore(s.walker, field('walker'));
    this.sparse = new SparseWalk(this.walker);
    this.drawn = new Int32Array(tasks);
    this.stats = s ? restoreStats(s.stats, field('stats'), tasks) : emptyStats(tasks);
    this.shares = new ShareWindow(tasks, deps.shareWindow ?? DEFAULT_SHARE_WINDOW, this.stats.examples);
    if (s) this.shares.restore(s.shares, field('shares'), step, this.stats.examples);
    this.pending = s
      ? PendingUpdates.restore(s.pending, field('pending'), step, deps.resolve)
      : new PendingUpdates(deps.resolve);
    const train = packingStrategy(deps.spec.packing).train;
    // parseSpec admits an evaluation-only strategy for evaluation splits only.
    if (!train) throw new Error(`packing "${deps.spec.packing}" has no train packer`);
    const { layout, table, spec } = deps;
    const excluded = (shard: number, row: number): boolean => deps.filter?.excluded(shard, row) ?? false;
    this.packer = train({
      window: spec.window,
      pending: s
        ? restorePending(s.pool, field('pool'), {
            layout,
            table,
            sizes: this.sizes,
            window: spec.window,
            maxTurns: spec.maxTurns,
            seqLen: spec.seqLen,
            overlong: spec.overlong,
            excluded,
          })
        : [],
      conversation: {
        layout,
        seed: spec.seed,
        seqLen: spec.seqLen,
        maxTurns: spec.maxTurns,
        joinable: (t) => (this.sizes[t] ?? 0) > 0 && (this.sampler.targets[t] ?? 0) > 0,
        excluded,
        credit: (t) => this.sampler.credit(t),
      },
    });
    const policy = spec.mixture.policy;
    if (policy) {
      const arms = policyArms(spec.mixture, table.reader, deps.resolve(spec.mixture, 'mixture'), DOMAINS);
      this.policy = new PolicyRunner(policy, arms);
      if (s) this.policy.restore(s.policy, field('policy'));
    } else if (s?.policy !== undefined) {
      refuse(field('policy'), "is set but the token's mixture has no policy");
    }
  }

  /** Queues a live update; `nextStep` is the first step not yet planned. */
  addUpdate(u: MixtureUpdate, nextStep: number): void {
    this.pending.add(u, nextStep);
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

  /**
   * Begins global step `step`: takes in the report and applies the updates due at it; the step's
   * rows follow with planRows (in any chunks). With a policy, `report` is the trainer's report of
   * step step − lag_steps (undefined if it sent none): the policy takes it in first, and a decision
   * it makes applies from this very step, like a manual update queued for it, unless one was.
   */
  beginStep(step: number, report?: LossReport): void {
    this.drawn.fill(0);
    this.begun = true;
    this.shares.beginStep(step, this.stats.examples);
    const s = step - (this.policy?.spec.lagSteps ?? 0);
    const decided = this.policy && s >= 0 ? this.policy.consume(s, report) : undefined;
    if (decided && !this.pending.has(step))
      this.pending.queue({ mixture: this.policy!.mixture(this.mixture, decided), applyAtStep: step }, 'policy');
    if (this.pending.dueAt(step)) this.shares.updateApplied(step, this.stats.examples);
    while (this.pending.dueAt(step)) {
      const u = this.pending.shift();
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
      this.drawn[t] = (this.drawn[t] ?? 0) + 1;
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
        throw new FailedPreconditionError(
          'nothing_to_serve',
          `no train record of task ${path} can be served: all are longer than seq_len=${spec.seqLen} (overlong=${spec.overlong}) or are removed by the held-out set's guards (datasets, shared audio, overlapping text); raise seq_len or give the task weight 0`,
        );
      }
    }
  }

  /**
   * Records the next steps will likely draw, as [task, record] pairs, soonest first (by when each
   * is expected, from its task's share), with how many of them `depth` steps are expected to
   * draw: per task with a share, the next `depth` × (1 + 2 × its draws in the last step) of its
   * walk (`depth` before the first step). Planning reads these records' list, row and span pages;
   * reading them ahead lets a step be planned without a read (a draw beyond them is read when
   * missed, see plan-reads.ts).
   */
  upcoming(depth = 1): { pairs: number[]; likely: number } {
    const targets = this.sampler.targets;
    let sum = 0;
    let drawn = 0;
    for (let t = 0; t < targets.length; t++) {
      if ((this.sizes[t] ?? 0) > 0) sum += targets[t] ?? 0;
      drawn += this.drawn[t] ?? 0;
    }
    const found: { t: number; i: number; at: number }[] = [];
    for (let t = 0; t < targets.length; t++) {
      const share = (targets[t] ?? 0) / sum;
      if (!(share > 0 && (this.sizes[t] ?? 0) > 0)) continue;
      const ahead = depth * (this.begun ? 1 + 2 * (this.drawn[t] ?? 0) : 1);
      for (let j = 0; j < ahead; j++) {
        const i = this.walker.peek(t, j);
        if (i === undefined) break;
        found.push({ t, i, at: (j + 0.5) / share });
      }
    }
    found.sort((a, b) => a.at - b.at);
    const pairs: number[] = [];
    for (const f of found) pairs.push(f.t, f.i);
    const likely = this.begun ? Math.min(found.length, Math.round(depth * drawn)) : found.length;
    return { pairs, likely };
  }

  /** The state to encode into a resume token right away: it shares the planner's live stats. */
  state(): TrainState {
    const base = {
      sampler: this.sampler.state(),
      walker: this.walker.state(),
      pool: pendingState(this.packer.pending),
      stats: this.stats,
      mixture: this.mixture,
      pending: this.pending.all,
      shares: this.shares.snapshot,
    };
    return this.policy ? { ...base, policy: this.policy.state() } : base;
  }
}
