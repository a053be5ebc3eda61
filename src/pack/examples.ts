import type { ExampleLoc } from '../index/example-table.js';
import type { Fit, SegmentLayout } from './segment-layout.js';

/**
 * `packing: examples` (evaluation splits only): one item per row, laid out whole — no seq_len
 * fitting or truncation, since the item is sent as a prompt ending at the assistant header plus
 * its reference answer for generation-based evaluation, not as a token row.
 */
export function wholeItem(layout: SegmentLayout, loc: ExampleLoc): Fit {
  const turn = layout.turn(loc, false);
  return { segment: { turns: [turn], length: layout.segmentLength([turn]) }, truncated: false };
}
