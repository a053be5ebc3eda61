import { InvalidArgumentError } from '../errors.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { EvalItems } from './eval-items.js';
import { EvalPlanner, type EvalState } from './eval-planner.js';
import type { PlannedStep } from './plan-cache.js';
import type { TokenMint } from './resume-token.js';
import type { DroppedItems, EndFigures, PolicyView, StreamPlan, Upcoming } from './stream-plan.js';
import type { Placement, StreamSpec } from './stream-spec.js';
import { taskDomains, wireStats } from './stream-stats.js';

export interface EvalPlanInit {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly layout: SegmentLayout;
  readonly items: EvalItems;
  readonly mint: TokenMint;
  /** A token's state (checked by the planner), or undefined for a fresh stream. */
  readonly state: EvalState | undefined;
}

/** What a rank is given over a whole evaluation stream (replayed once, see EvalPlan.replay). */
interface Replayed {
  readonly counts: number[];
  readonly dropped: DroppedItems;
  readonly steps: number;
}

/**
 * An evaluation stream's plan: the set's items in their fixed order (eval-planner.ts), to the
 * end. It takes no mixture updates or loss reports: the set is served whole and in order.
 */
export class EvalPlan implements StreamPlan {
  private readonly init: EvalPlanInit;
  private planner: EvalPlanner;
  private replayed: Replayed | undefined;
  /** A replay stopped by a page not in memory: where its last whole step left it (see `replay`). */
  private progress: { state: EvalState; longest: number; counts: number[]; steps: number } | undefined;
  private readonly domains: Int32Array;
  /** Items the last step placed (dropped ones included), and the first item of the step being planned. */
  private perStep = 0;
  private first = 0;
  /** The token made when the last step finished, while the planner has not moved since (see TrainPlan). */
  private fresh: { readonly next: number; readonly token: Buffer } | undefined;

  constructor(init: EvalPlanInit) {
    this.init = init;
    this.planner = new EvalPlanner(init.items, init.layout, init.spec, init.state);
    this.domains = taskDomains(init.layout);
  }

  get done(): boolean {
    return this.planner.done;
  }

  waiting(): boolean {
    return false;
  }

  token(next: number): Buffer {
    if (this.fresh?.next === next) return this.fresh.token;
    return this.init.mint.make(next, this.planner.state());
  }

  begin(): PlannedStep | undefined {
    this.first = this.planner.next;
    return undefined;
  }

  /** The items after the cursor, in order: `depth` steps of as many as the last step placed (at least a row each). */
  upcoming(depth: number): Upcoming {
    const { items, placement, spec } = this.init;
    const from = this.planner.next;
    const n = Math.min(items.total - from, depth * Math.max(this.perStep, placement.worldSize * spec.batchSize));
    const records = Array.from({ length: Math.max(0, n) }, (_, k) => () => items.at(from + k));
    return { records, likely: records.length };
  }

  rows(n: number): Segment[][] {
    this.fresh = undefined;
    return this.planner.rows(n);
  }

  finish(step: number, rows: Segment[][]): PlannedStep {
    const stats = wireStats(this.planner.totals, this.domains, this.init.layout.table.reader.manifest.vocab.frameRate);
    const token = this.token(step + 1);
    this.fresh = { next: step + 1, token };
    this.perStep = this.planner.next - this.first;
    return { rows, token, stats };
  }

  get totalSteps(): number {
    return this.replay().steps;
  }

  end(): EndFigures {
    const r = this.replay();
    return { taskExamples: r.counts, totalTaskExamples: [...this.init.items.perTask], taskDropped: r.dropped.perTask };
  }

  /** From the replay of the whole set that also gives the step count (eval-planner.ts decides what fits). */
  dropped(): DroppedItems {
    return this.replay().dropped;
  }

  rewind(token: Buffer): void {
    const { items, layout, spec, mint } = this.init;
    this.fresh = undefined;
    this.planner = new EvalPlanner(items, layout, spec, mint.read(token).state as EvalState);
  }

  addUpdate(): void {
    // A client error, not an internal one: it must reach the client as INVALID_ARGUMENT.
    throw new InvalidArgumentError(
      'mixture_update',
      `mixture updates apply to split "train" only; the ${this.init.spec.split} split is served whole and in order`,
    );
  }

  addReport(): void {
    throw new InvalidArgumentError(
      'losses',
      `loss reports apply to split "train" only; the ${this.init.spec.split} split is an evaluation stream`,
    );
  }

  policyView(): PolicyView | undefined {
    return undefined;
  }

  close(): void {
    // Nothing is shared with other streams.
  }

  /**
   * Examples this rank is given over the whole stream, the set's dropped items and the stream's
   * step count, replayed from its start once per plan (the first batch needs the step count, the
   * end the counts). A replay run strictly (stream-session.ts) that needs a page not in memory
   * stops there; the next call goes on from its last whole step, not from the start, so a set
   * whose pages are missed one by one is still replayed once.
   */
  private replay(): Replayed {
    if (this.replayed) return this.replayed;
    const { items, layout, spec, placement } = this.init;
    const at = this.progress ?? { state: undefined, longest: 0, counts: items.perTask.map(() => 0), steps: 0 };
    const replay = new EvalPlanner(items, layout, spec, at.state, at.longest);
    const counts = [...at.counts];
    const { rank, worldSize } = placement;
    const B = spec.batchSize;
    let steps = at.steps;
    while (!replay.done) {
      const rows = replay.rows(worldSize * B).slice(rank * B, (rank + 1) * B);
      steps++;
      for (const row of rows)
        for (const seg of row) for (const t of seg.turns) counts[t.loc.task] = (counts[t.loc.task] ?? 0) + 1;
      this.progress = { state: structuredClone(replay.state()), longest: replay.longestDropped, counts, steps };
    }
    const dropped = { perTask: replay.totals.dropped, fitSeqLen: replay.longestDropped };
    this.replayed = { counts, dropped, steps };
    this.progress = undefined;
    return this.replayed;
  }
}
