/**
 * A train stream's pending mixture updates: each checked and its mixture resolved, one per step
 * (the last one sent for a step wins), in step order, at most MAX_PENDING_UPDATES so resume
 * tokens stay small; restored from a token with the same checks. TrainPlanner applies them as
 * their steps begin.
 */
import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import type { MixtureSpec } from '../mix/mixture.js';
import { checkInt, checkList, checkObject, refuse } from '../mix/state-check.js';
import { MAX_PENDING_UPDATES, type MixtureUpdate } from './stream-spec.js';

type Resolve = (m: MixtureSpec, field: string) => Float64Array;

export class PendingUpdates {
  private list: MixtureUpdate[] = [];

  constructor(private readonly resolve: Resolve) {}

  /** A token's pending updates: for steps not yet built (from `step`), in order, one per step, each mixture resolving. */
  static restore(value: unknown, field: string, step: number, resolve: Resolve): PendingUpdates {
    const list = checkList(field, value);
    if (list.length > MAX_PENDING_UPDATES)
      refuse(field, `holds ${list.length} updates; at most ${MAX_PENDING_UPDATES} may wait`);
    let last = step - 1;
    const out = new PendingUpdates(resolve);
    out.list = list.map((u, k) => {
      const p = checkObject(`${field}[${k}]`, u);
      last = checkInt(`${field}[${k}].applyAtStep`, p.applyAtStep, last + 1, Number.MAX_SAFE_INTEGER);
      const mixture = mixtureOf(p.mixture, `${field}[${k}].mixture`);
      resolve(mixture, `${field}[${k}].mixture`);
      return { mixture, applyAtStep: last };
    });
    return out;
  }

  /** The queue as the resume token carries it. */
  get all(): MixtureUpdate[] {
    return this.list;
  }

  /** Whether an update waits for exactly `step`. */
  has(step: number): boolean {
    return this.list.some((u) => u.applyAtStep === step);
  }

  /** Whether the first update is due at `step` (for it or an earlier one). */
  dueAt(step: number): boolean {
    return this.list[0] !== undefined && this.list[0].applyAtStep <= step;
  }

  /** Takes the first update off the queue (after dueAt). */
  shift(): MixtureUpdate {
    return this.list.shift()!;
  }

  /** Queues a live update; `nextStep` is the first step not yet planned. */
  add(u: MixtureUpdate, nextStep: number): void {
    if (u.applyAtStep < nextStep) {
      throw new InvalidArgumentError(
        'mixture_update.apply_at_step',
        `step ${u.applyAtStep} was already built (next step is ${nextStep}); send updates for a later step`,
      );
    }
    this.queue(u, 'mixture_update');
  }

  /** Validates and queues an update (the last one for a step wins); the queue is bounded so tokens stay small. */
  queue(u: MixtureUpdate, field: string): void {
    if (
      typeof u !== 'object' ||
      u === null ||
      !Number.isSafeInteger(u.applyAtStep) ||
      typeof u.mixture !== 'object' ||
      u.mixture === null
    ) {
      throw new InvalidArgumentError(field, 'a pending mixture update is malformed');
    }
    this.resolve(u.mixture, field);
    const pending = [...this.list.filter((p) => p.applyAtStep !== u.applyAtStep), u].sort(
      (a, b) => a.applyAtStep - b.applyAtStep,
    );
    if (pending.length > MAX_PENDING_UPDATES)
      throw new ResourceExhaustedError('pending mixture updates', pending.length, MAX_PENDING_UPDATES);
    this.list = pending;
  }
}

/** A mixture as a token section carries it: an object with weights (resolving it checks the rest). */
export function mixtureOf(value: unknown, field: string): MixtureSpec {
  const m = checkObject(field, value);
  checkObject(`${field}.weights`, m.weights);
  return m as unknown as MixtureSpec;
}
