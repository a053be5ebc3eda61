/**
 * The mixture updates a worker-built stream holds while others are being answered: by step, in
 * arrival order of their steps, those for the same step coalesced (the last one sent wins, as in
 * the planner), at most MAX_PENDING_UPDATES steps (beyond, RESOURCE_EXHAUSTED, as the planner
 * refuses more pending updates). RemoteStream asks them together once it took its next message.
 */
import { ResourceExhaustedError } from '../errors.js';
import { MAX_PENDING_UPDATES, type MixtureUpdate } from '../stream/stream-spec.js';

/** Mixture updates for one step held until the next batch is taken (the last one sent wins, as in the planner). */
export interface Held {
  readonly step: number;
  update: MixtureUpdate;
  readonly waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

export class HeldUpdates {
  private held: Held[] = [];
  /** The last round of updates is answered and more are held: they go once a message is taken. */
  forTake = false;

  /** Steps held. */
  get length(): number {
    return this.held.length;
  }

  /** Holds `update` for the next round: settles when its step's update is answered. */
  hold(update: MixtureUpdate): Promise<void> {
    const step = update.applyAtStep;
    const same = this.held.find((h) => h.step === step);
    if (!same && this.held.length >= MAX_PENDING_UPDATES)
      throw new ResourceExhaustedError(
        'pending mixture updates (steps of updates waiting for the next batch; send fewer, or fewer distinct apply_at_step)',
        this.held.length + 1,
        MAX_PENDING_UPDATES,
      );
    return new Promise((resolve, reject) => {
      if (same) {
        same.update = update;
        same.waiters.push({ resolve, reject });
      } else this.held.push({ step, update, waiters: [{ resolve, reject }] });
    });
  }

  /** Every held step, in order, now no longer held (a round is asked). */
  take(): Held[] {
    this.forTake = false;
    return this.held.splice(0);
  }

  /** Fails every held update with `err`. */
  reject(err: Error): void {
    for (const h of this.take()) h.waiters.forEach((w) => w.reject(err));
  }
}
