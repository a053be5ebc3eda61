import { describe, expect, it } from 'vitest';
import { BestFitWindow } from '../../src/pack/best-fit.js';
import { nextFitEvalRow } from '../../src/pack/next-fit.js';
import type { ItemFeed } from '../../src/pack/packing.js';
import { PACKING_NAMES, packingStrategy } from '../../src/pack/registry.js';
import type { Fit, Segment } from '../../src/pack/segment-layout.js';
import { SingleRow, singleEvalRow } from '../../src/pack/single.js';

/**
 * The packing strategies on their own, over units that are only lengths (no corpus): the row-filling
 * rules each one promises (docs/service.md), which the stream tests only see through whole batches.
 */
const unit = (length: number): Segment => ({ turns: [], length });
/** Draws the given lengths in order, recording how many were drawn. */
function drawer(lengths: number[]): { draw: () => Segment; drawn: () => number; units: Segment[] } {
  const units: Segment[] = [];
  const draw = (): Segment => {
    const u = unit(lengths[units.length] ?? 1);
    units.push(u);
    return u;
  };
  return { draw, drawn: () => units.length, units };
}
/** An item feed over lengths; `undefined` is an item that cannot be served. */
function feed(lengths: (number | undefined)[]): ItemFeed & { consumed: (number | undefined)[] } {
  let at = 0;
  const consumed: (number | undefined)[] = [];
  return {
    consumed,
    get done() {
      return at >= lengths.length;
    },
    peek: (): Fit | undefined =>
      lengths[at] === undefined ? undefined : { segment: unit(lengths[at]!), truncated: false },
    consume: (fit) => {
      consumed.push(fit?.segment.length);
      at++;
    },
  };
}

describe('packing strategies', () => {
  it('best-fit window: oldest unit first, then the largest that fits (oldest among equals), the window refilled before each choice', () => {
    const d = drawer([50, 30, 40, 40, 20, 10, 5]);
    const p = new BestFitWindow(4, []);
    // [50,30,40,40] → 50 (oldest); +20 → [30,40,40,20]: the first 40 fills 50 left; +10 → [30,40,20,10]:
    // 10 fills 10 left; +5 → [30,40,20,5]: nothing fits in 0, the row closes.
    const row = p.row(100, d.draw);
    expect(row).toEqual([d.units[0], d.units[2], d.units[5]]);
    expect(row[1]).toBe(d.units[2]);
    expect(p.pending).toEqual([d.units[1], d.units[3], d.units[4], d.units[6]]);
    expect(p.pending[1]).toBe(d.units[3]);
    expect(d.drawn()).toBe(7);
  });

  it('best-fit window 1 is next-fit: a row closes at the first unit that does not fit', () => {
    const p = new BestFitWindow(1, []);
    const d = drawer([60, 30, 20, 5]);
    expect(p.row(100, d.draw).map((s) => s.length)).toEqual([60, 30]);
    expect(p.pending.map((s) => s.length)).toEqual([20]);
  });

  it('best-fit keeps restored units first and drops those retain rejects', () => {
    const p = new BestFitWindow(3, [unit(70), unit(25)]);
    p.retain((u) => u.length !== 25);
    expect(p.row(100, drawer([20, 30]).draw).map((s) => s.length)).toEqual([70, 30]);
  });

  it('single row: one drawn unit per row, whatever room is left', () => {
    const p = new SingleRow();
    const d = drawer([10, 20]);
    expect(p.row(100, d.draw).map((s) => s.length)).toEqual([10]);
    expect(d.drawn()).toBe(1);
    expect(p.pending).toEqual([]);
  });

  it('evaluation next-fit: items in order until the next does not fit; unservable items are consumed, never replaced', () => {
    const items = feed([40, undefined, 50, 20, 30]);
    expect(nextFitEvalRow(items, 100).map((s) => s.length)).toEqual([40, 50]);
    expect(items.consumed).toEqual([40, undefined, 50]);
    expect(nextFitEvalRow(items, 100).map((s) => s.length)).toEqual([20, 30]);
    expect(items.done).toBe(true);
  });

  it('evaluation single row: one item, or an empty row for an item that cannot be served', () => {
    const items = feed([undefined, 30]);
    expect(singleEvalRow(items, 100)).toEqual([]);
    expect(singleEvalRow(items, 100).map((s) => s.length)).toEqual([30]);
    expect(items.consumed).toEqual([undefined, 30]);
  });

  it('the registry names every strategy of the stream spec; only examples is evaluation-only and sent as examples', () => {
    expect(PACKING_NAMES).toEqual(['none', 'packed', 'multiturn', 'examples']);
    for (const name of PACKING_NAMES) {
      const s = packingStrategy(name);
      expect(s.name).toBe(name);
      expect(s.train === undefined, name).toBe(name === 'examples');
      expect(s.sendsExamples, name).toBe(name === 'examples');
    }
  });
});
