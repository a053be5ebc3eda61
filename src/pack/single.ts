import type { ExampleLoc } from '../index/example-table.js';
import type { EvalPacker, ItemFeed, TrainPacker } from './packing.js';
import type { Fit, Overlong, Segment, SegmentLayout } from './segment-layout.js';

/**
 * One unit per row (`packing: none`, and every evaluation strategy that does not pack). Why its
 * own file: the simplest strategy, and the baseline a packed one is measured against.
 */
export class SingleRow implements TrainPacker {
  private units: Segment[];

  /** `pending`: units restored from a token. A `none` stream never leaves any; they are kept as given. */
  constructor(pending: Segment[] = []) {
    this.units = pending;
  }

  get pending(): readonly Segment[] {
    return this.units;
  }

  row(_seqLen: number, draw: () => Segment): Segment[] {
    return [draw()];
  }

  unit(first: Fit): Segment {
    return first.segment;
  }

  retain(keep: (unit: Segment) => boolean): void {
    this.units = this.units.filter(keep);
  }
}

/** The next item alone in its row; an item that cannot be served is consumed (counted dropped) and leaves the row empty. */
export const singleEvalRow: EvalPacker = (items: ItemFeed): Segment[] => {
  const fit = items.peek();
  items.consume(fit);
  return fit ? [fit.segment] : [];
};

/** An item fitted into seq_len: as is, truncated as `overlong` says, or not at all. */
export function fittedItem(
  layout: SegmentLayout,
  loc: ExampleLoc,
  seqLen: number,
  overlong: Overlong,
): Fit | undefined {
  return layout.fit(loc, seqLen, overlong);
}
