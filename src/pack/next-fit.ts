import type { EvalPacker, ItemFeed } from './packing.js';
import type { Segment } from './segment-layout.js';

/**
 * Next-fit packing for evaluation rows (`packed` on heldout/dev/test): items go into the row in
 * their fixed order until the next one does not fit, so the plan is a pure function of the
 * cursor and every item is served exactly once. Items that cannot be served at all are consumed
 * (counted dropped) and never replaced by another.
 */
export const nextFitEvalRow: EvalPacker = (items: ItemFeed, seqLen: number): Segment[] => {
  const row: Segment[] = [];
  let free = seqLen;
  while (!items.done) {
    const fit = items.peek();
    if (fit && fit.segment.length > free) break;
    items.consume(fit);
    if (!fit) continue;
    row.push(fit.segment);
    free -= fit.segment.length;
  }
  return row;
};
