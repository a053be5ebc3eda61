import type { ExampleLoc } from '../index/example-table.js';
import type { Fit, Overlong, Segment, SegmentLayout } from './segment-layout.js';

/**
 * The one small interface every packing strategy implements (registry.ts names them). Why: the
 * stream layer plans rows without knowing how they are packed, and a new strategy is one file
 * plus one registry line, never a new `if (packing === …)` in the planners or the session.
 */

/** Fills train rows from units drawn from the mixture; its state is the units drawn but not yet placed. */
export interface TrainPacker {
  /** One row of at most `seqLen` tokens, drawing units with `draw` as needed. */
  row(seqLen: number, draw: () => Segment): Segment[];
  /** How a drawn example becomes a unit (a multi-turn strategy grows it into a conversation). */
  unit(first: Fit): Segment;
  /** Units drawn but not placed yet, oldest first: they ride in resume tokens. */
  readonly pending: readonly Segment[];
  /** Keeps only the pending units `keep` accepts (a mixture update silenced the others' tasks). */
  retain(keep: (unit: Segment) => boolean): void;
}

/** An evaluation stream's items in their fixed order: a packer looks at the next one before taking it. */
export interface ItemFeed {
  readonly done: boolean;
  /** The item at the cursor laid out for a row (undefined: it cannot be served), not consumed. */
  peek(): Fit | undefined;
  /** Moves past the item at the cursor; `fit` is what peek gave (undefined counts it as dropped). */
  consume(fit: Fit | undefined): void;
}

/** Fills evaluation rows from items in order; stateless (the cursor is the feed's). */
export type EvalPacker = (items: ItemFeed, seqLen: number) => Segment[];

/** What a multi-turn strategy needs from the stream to grow a drawn example into a conversation. */
export interface ConversationDeps {
  readonly layout: SegmentLayout;
  readonly seed: number;
  readonly seqLen: number;
  readonly maxTurns: number;
  /** Whether a record of `task` may join (it has train records and weight in the mixture now). */
  readonly joinable: (task: number) => boolean;
  /** Whether the held-out set's guards remove a record. */
  readonly excluded: (shard: number, row: number) => boolean;
  /** A joined turn counts toward its own task in the sampler, so the mixture stays exact. */
  readonly credit: (task: number) => void;
}

export interface TrainPackerInit {
  /** Pending units the packer chooses from (stream spec `window`). */
  readonly window: number;
  /** Units restored from a resume token, oldest first. */
  readonly pending: Segment[];
  readonly conversation: ConversationDeps;
}

export interface PackingStrategy {
  readonly name: string;
  /** Builds train rows; absent = an evaluation-only strategy. */
  readonly train?: (init: TrainPackerInit) => TrainPacker;
  readonly eval: EvalPacker;
  /** How an evaluation item is laid out for a row: fitted to seq_len (as configured), or whole. */
  readonly item: (layout: SegmentLayout, loc: ExampleLoc, seqLen: number, overlong: Overlong) => Fit | undefined;
  /** Rows are sent as evaluation examples (prompt, reference answer), not as token rows. */
  readonly sendsExamples: boolean;
}
