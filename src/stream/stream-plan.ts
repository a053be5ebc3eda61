import type { RecordRef } from '../index/record-pages.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import type { Segment } from '../pack/segment-layout.js';
import type { PlannedStep } from './plan-cache.js';
import type { MixtureUpdate } from './stream-spec.js';

/**
 * The one interface a stream's plan implements: what is served, step by step, and what a resume
 * token remembers of it. Two plans exist, the train plan (train-plan.ts: an endless mixture,
 * updates, loss reports, steps shared between ranks) and the evaluation plan (eval-plan.ts: a
 * finite set in order). Why an interface: the session (stream-session.ts) is only the loop (the
 * step, messages sent, the last token, this rank's rows), so it never asks which kind of stream
 * it serves, and a new kind of plan is one file implementing this.
 */
export interface StreamPlan {
  /** Nothing is left to plan: the stream ends ("complete"). */
  readonly done: boolean;
  /** True while step `next` waits for the loss report it feeds on (a policy's lag). */
  waiting(next: number): boolean;
  /** The resume token of the plan as it stands, `next` being the next step to plan. */
  token(next: number): Buffer;
  /** Begins global step `step`: the step itself when it was planned already (another rank's, from the plan cache), else undefined and its rows follow. */
  begin(step: number): PlannedStep | undefined;
  /**
   * Resolves once another stream's plan of step `step`, in flight now (its pages being read), is
   * offered or given up (then `begin` looks again); undefined when none is (plans shared between
   * ranks only, see plan-cache.ts).
   */
  elsewhere?(step: number): Promise<void> | undefined;
  /** The next `n` rows of the step begun (all ranks'); fewer only when the plan is done. */
  rows(n: number): Segment[][];
  /** Closes the step begun: its rows, the token after it and the stream's stats as of it. */
  finish(step: number, rows: Segment[][]): PlannedStep;
  /** Steps in the whole stream (0: endless); sent with every batch. */
  readonly totalSteps: number;
  /** The per-task figures of the stream's end message. */
  end(): EndFigures;
  /** What of the whole set fits no row, as known when the stream opens (nothing for endless streams). */
  dropped(): DroppedItems;
  /**
   * Back to the state a token of this very stream describes: a build worker's rewind, or a step
   * begun and abandoned because a page it needed was not in memory (see plan-reads.ts).
   */
  rewind(token: Buffer): void;
  /**
   * Records the next steps will likely draw, in order (read ahead, see plan-reads.ts): about
   * `depth` steps' worth; none: nothing to read ahead. Listing them reads nothing.
   */
  upcoming?(depth: number): Upcoming;
  /** A mixture update; `next` is the first step not yet planned (refused by plans that take none). */
  addUpdate(u: MixtureUpdate, next: number): void;
  /** A checked loss report; `next` is the first step not sent yet (refused by plans that take none). */
  addReport(r: LossReport, next: number): void;
  /** The policy now (read live when scraped); undefined without one. */
  policyView(): PolicyView | undefined;
  /** The stream closed: what it shared with other streams of its job is let go. */
  close(): void;
}

/**
 * Records a plan will likely draw, soonest first, each located when asked (which reads its list
 * entry: a PageMiss inside `strictly` while that page is not in memory); the first `likely` of
 * them are those the steps asked for are expected to draw (the rest a margin).
 */
export interface Upcoming {
  readonly records: readonly (() => RecordRef)[];
  readonly likely: number;
}

/** The per-task figures of an end message (this rank's examples over the stream, the set's). */
export interface EndFigures {
  readonly taskExamples: number[];
  readonly totalTaskExamples: number[];
  readonly taskDropped: number[];
}

/** Items of a finite stream's set that fit no row even truncated (never served). */
export interface DroppedItems {
  /** Per task index (the end message's `taskDropped` repeats them). */
  readonly perTask: number[];
  /** The smallest seq_len at which all of them fit whole (0: none dropped). */
  readonly fitSeqLen: number;
}

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
