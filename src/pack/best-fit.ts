import type { ConversationBuilder } from './conversation.js';
import type { TrainPacker } from './packing.js';
import { PendingUnits } from './pending-units.js';
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
  private pool: PendingUnits;
  private readonly conversations: ConversationBuilder | undefined;

  /** `conversations`: grow each drawn example into a multi-turn conversation first. */
  constructor(window: number, pending: Segment[] = [], conversations?: ConversationBuilder) {
    this.window = window;
    this.pool = new PendingUnits(pending, 2 * window);
    this.conversations = conversations;
  }

  get pending(): readonly Segment[] {
    return this.pool.list();
  }

  unit(first: Fit): Segment {
    return this.conversations && !first.truncated ? this.conversations.grow(first.segment) : first.segment;
  }

  retain(keep: (unit: Segment) => boolean): void {
    this.pool = new PendingUnits(this.pool.list().filter(keep), 2 * this.window);
  }

  row(seqLen: number, draw: () => Segment): Segment[] {
    const row: Segment[] = [];
    let free = seqLen;
    for (;;) {
      while (this.pool.size < this.window) this.pool.push(draw());
      // The oldest pending unit starts the row; then the largest that fits (see PendingUnits).
      const unit = row.length === 0 ? this.pool.takeOldest() : this.pool.takeBestFit(free);
      if (!unit) return row;
      row.push(unit);
      free -= unit.length;
    }
  }
}
