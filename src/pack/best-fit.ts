import type { ConversationBuilder } from './conversation.js';
import type { TrainPacker } from './packing.js';
import type { Fit, Segment } from './segment-layout.js';

/**
 * Best-fit window packing for train rows (`packed`, `multiturn`): a row starts with the oldest
 * pending unit, then takes the largest pending unit that still fits (the oldest among equals)
 * until none does. The window slides: a placed unit is replaced before the next choice, so every
 * choice sees `window` pending units (window 1 is next-fit packing). The pending units are the
 * whole state; they ride in the resume token.
 */
export class BestFitWindow implements TrainPacker {
  private readonly window: number;
  private pool: Segment[];
  private readonly conversations: ConversationBuilder | undefined;

  /** `conversations`: grow each drawn example into a multi-turn conversation first. */
  constructor(window: number, pending: Segment[] = [], conversations?: ConversationBuilder) {
    this.window = window;
    this.pool = pending;
    this.conversations = conversations;
  }

  get pending(): readonly Segment[] {
    return this.pool;
  }

  unit(first: Fit): Segment {
    return this.conversations && !first.truncated ? this.conversations.grow(first.segment) : first.segment;
  }

  retain(keep: (unit: Segment) => boolean): void {
    this.pool = this.pool.filter(keep);
  }

  row(seqLen: number, draw: () => Segment): Segment[] {
    const row: Segment[] = [];
    let free = seqLen;
    for (;;) {
      while (this.pool.length < this.window) this.pool.push(draw());
      const pick = row.length === 0 ? 0 : this.bestFit(free);
      if (pick < 0) return row;
      const unit = this.take(pick);
      row.push(unit);
      free -= unit.length;
    }
  }

  /** Removes and returns pending unit `j`, the later ones moving up (splice without its result array, once per example). */
  private take(j: number): Segment {
    const pool = this.pool;
    const unit = pool[j]!;
    for (let k = j + 1; k < pool.length; k++) pool[k - 1] = pool[k]!;
    pool.pop();
    return unit;
  }

  /** The largest pending unit that fits in `free` tokens (the oldest among equals), or -1. */
  private bestFit(free: number): number {
    let best = -1;
    let bestLen = 0;
    for (let j = 0; j < this.pool.length; j++) {
      const len = this.pool[j]!.length;
      if (len <= free && len > bestLen) {
        best = j;
        bestLen = len;
      }
    }
    return best;
  }
}
