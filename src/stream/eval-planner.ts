import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { EvalItems } from './eval-items.js';
import { countRow, emptyStats, type StreamStats } from './stream-stats.js';
import { checkEvalState } from './token-state-check.js';
import type { StreamSpec } from './stream-spec.js';

export interface EvalState {
  /** The next evaluation item to place. */
  readonly cursor: number;
  readonly stats: StreamStats;
}

/**
 * Plans a finite evaluation stream: items in their fixed order, one per row (`none`, `examples`)
 * or packed next-fit in order (`packed`), so the plan is a pure function of the cursor. An item
 * that cannot fit even truncated is counted as dropped, never replaced by another.
 */
export class EvalPlanner {
  private readonly items: EvalItems;
  private readonly layout: SegmentLayout;
  private readonly spec: StreamSpec;
  private cursor: number;
  private readonly stats: StreamStats;

  constructor(items: EvalItems, layout: SegmentLayout, spec: StreamSpec, state?: EvalState) {
    this.items = items;
    this.layout = layout;
    this.spec = spec;
    const tasks = layout.table.reader.tasks.length;
    if (state) checkEvalState(state, { tasks, total: items.total });
    this.cursor = state?.cursor ?? 0;
    this.stats = state ? structuredClone(state.stats) : emptyStats(tasks);
  }

  get done(): boolean {
    return this.cursor >= this.items.total;
  }

  get totals(): StreamStats {
    return this.stats;
  }

  /** Up to `rows` rows; fewer (or none) when the items run out. */
  planStep(rows: number): Segment[][] {
    const out: Segment[][] = [];
    while (out.length < rows && !this.done) {
      const row = this.spec.packing === 'packed' ? this.packedRow() : this.singleRow();
      if (row.length === 0) continue;
      if (this.spec.packing !== 'examples') countRow(this.stats, this.layout, row, this.spec.seqLen);
      out.push(row);
    }
    return out;
  }

  /** The segment for the item at the cursor, without consuming it; undefined if it cannot fit. */
  private peek(): { segment: Segment; truncated: boolean } | undefined {
    const loc = this.items.at(this.cursor);
    if (this.spec.packing !== 'examples') return this.layout.fit(loc, this.spec.seqLen, this.spec.overlong);
    const turn = this.layout.turn(loc, false);
    return { segment: { turns: [turn], length: this.layout.segmentLength([turn]) }, truncated: false };
  }

  private consume(fit: { segment: Segment; truncated: boolean } | undefined): void {
    const task = this.items.at(this.cursor).task;
    this.cursor++;
    if (!fit) this.stats.dropped[task] = (this.stats.dropped[task] ?? 0) + 1;
    else if (fit.truncated) this.stats.truncated[task] = (this.stats.truncated[task] ?? 0) + 1;
    if (fit && this.spec.packing === 'examples') this.stats.examples[task] = (this.stats.examples[task] ?? 0) + 1;
  }

  private singleRow(): Segment[] {
    const fit = this.peek();
    this.consume(fit);
    return fit ? [fit.segment] : [];
  }

  private packedRow(): Segment[] {
    const row: Segment[] = [];
    let free = this.spec.seqLen;
    while (!this.done) {
      const fit = this.peek();
      if (fit && fit.segment.length > free) break;
      this.consume(fit);
      if (!fit) continue;
      row.push(fit.segment);
      free -= fit.segment.length;
    }
    return row;
  }

  /** The state to encode into a resume token right away: it shares the planner's live stats. */
  state(): EvalState {
    return { cursor: this.cursor, stats: this.stats };
  }
}
