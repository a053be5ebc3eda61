import type { ItemFeed, PackingStrategy } from '../pack/packing.js';
import { packingStrategy } from '../pack/registry.js';
import type { Fit, Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { EvalItems } from './eval-items.js';
import { checkInt, STATE_FIELD } from '../mix/state-check.js';
import { stateSections } from './resume-token.js';
import { countRow, emptyStats, restoreStats, type StreamStats } from './stream-stats.js';
import type { StreamSpec } from './stream-spec.js';

/** A row length every item fits in: asks a packing strategy for an item's whole length. */
const WHOLE = 0xffffffff;

export interface EvalState {
  /** The next evaluation item to place. */
  readonly cursor: number;
  readonly stats: StreamStats;
}

/**
 * Plans a finite evaluation stream: items in their fixed order, laid out and put into rows by the
 * stream's packing strategy (src/pack: one per row, or next-fit in order), so the plan is a pure
 * function of the cursor. An item that cannot fit even truncated is counted as dropped, never
 * replaced by another. The planner is the strategy's item feed.
 */
export class EvalPlanner implements ItemFeed {
  private readonly items: EvalItems;
  private readonly layout: SegmentLayout;
  private readonly spec: StreamSpec;
  private readonly packing: PackingStrategy;
  private cursor: number;
  private readonly stats: StreamStats;
  /** The whole length of the longest item dropped by this planner (not in its state: a replay from the start reads it). */
  private longest = 0;

  /** `state`: a resume token's (client input: checked here, section by section); `longest`: a replay's, resumed. */
  constructor(items: EvalItems, layout: SegmentLayout, spec: StreamSpec, state?: unknown, longest = 0) {
    this.items = items;
    this.layout = layout;
    this.spec = spec;
    this.packing = packingStrategy(spec.packing);
    const tasks = layout.table.reader.tasks.length;
    const s = state === undefined ? undefined : stateSections(state, 'eval');
    this.cursor = s ? checkInt(`${STATE_FIELD}.cursor`, s.cursor, 0, items.total) : 0;
    this.stats = s ? restoreStats(s.stats, `${STATE_FIELD}.stats`, tasks) : emptyStats(tasks);
    this.longest = longest;
  }

  /** The next item to place. */
  get next(): number {
    return this.cursor;
  }

  get done(): boolean {
    return this.cursor >= this.items.total;
  }

  get totals(): StreamStats {
    return this.stats;
  }

  /** The smallest seq_len that would fit every item this planner dropped whole (0: none). */
  get longestDropped(): number {
    return this.longest;
  }

  /** Up to `rows` rows; fewer (or none) when the items run out. */
  rows(rows: number): Segment[][] {
    const out: Segment[][] = [];
    while (out.length < rows && !this.done) {
      const row = this.packing.eval(this, this.spec.seqLen);
      if (row.length === 0) continue;
      // Examples are sent as items, not token rows: they have no padding or row tokens to count.
      if (!this.packing.sendsExamples) countRow(this.stats, this.layout, row, this.spec.seqLen);
      out.push(row);
    }
    return out;
  }

  /** The segment for the item at the cursor, without consuming it; undefined if it cannot fit. */
  peek(): Fit | undefined {
    return this.packing.item(this.layout, this.items.at(this.cursor), this.spec.seqLen, this.spec.overlong);
  }

  consume(fit: Fit | undefined): void {
    const loc = this.items.at(this.cursor);
    const task = loc.task;
    this.cursor++;
    if (!fit) {
      this.stats.dropped[task] = (this.stats.dropped[task] ?? 0) + 1;
      const whole = this.packing.item(this.layout, loc, WHOLE, 'drop');
      this.longest = Math.max(this.longest, whole?.segment.length ?? 0);
    } else if (fit.truncated) this.stats.truncated[task] = (this.stats.truncated[task] ?? 0) + 1;
    if (fit && this.packing.sendsExamples) this.stats.examples[task] = (this.stats.examples[task] ?? 0) + 1;
  }

  /** The state to encode into a resume token right away: it shares the planner's live stats. */
  state(): EvalState {
    return { cursor: this.cursor, stats: this.stats };
  }
}
