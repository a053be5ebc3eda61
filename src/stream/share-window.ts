import { InvalidArgumentError } from '../errors.js';
import { checkInt, checkInts, checkObject } from '../mix/state-check.js';

/**
 * Realized shares that make a mixture update visible at its step. Shares counted from step 0
 * hide an update for a long time (after an update at step 200, step 499 still shows mostly the
 * old mixture), so the stats also carry per-task example counts
 * - since the last update took effect (`sinceUpdateStep`; the stream start before any update), and
 * - over a recent window: from the start of the previous `window`-step block up to the current
 *   step (between `window` + 1 and 2·`window` steps once the stream is that long).
 *
 * Both are the running per-task counts minus a baseline copied only when an update applies or a
 * block starts — never per batch — and the baselines travel in the resume token, so a resumed
 * stream continues the figures exactly.
 */
export interface ShareState {
  /** Steps per block of the recent window. */
  readonly window: number;
  /** The step the last mixture update applied at (0 before any). */
  readonly updateStep: number;
  /** Per-task examples served before `updateStep`. */
  readonly atUpdate: number[];
  /** First step of the recent window. */
  readonly windowStart: number;
  /** Per-task examples served before `windowStart`. */
  readonly atWindowStart: number[];
  /** Per-task examples served before the current block. */
  readonly atBlockStart: number[];
}

export const DEFAULT_SHARE_WINDOW = 100;

export class ShareWindow {
  private state: ShareState;
  private readonly tasks: number;

  /** Fresh figures, starting at the running counts `examples` (a new stream, or a token from before they existed). */
  constructor(tasks: number, window: number, examples: readonly number[]) {
    const base = [...examples];
    if (base.length !== tasks) throw new RangeError(`share baselines for ${base.length} tasks, expected ${tasks}`);
    this.tasks = tasks;
    this.state = {
      window,
      updateStep: 0,
      atUpdate: base,
      windowStart: 0,
      atWindowStart: [...base],
      atBlockStart: [...base],
    };
  }

  /**
   * Restores a token's `shares` section, checked; absent (a token made before it existed), the
   * fresh figures stay. Steps are at most the token's `step`, and a baseline above the running
   * counts (`examples`) would make a negative count, so it is refused.
   */
  restore(value: unknown, field: string, step: number, examples: readonly number[]): void {
    if (value === undefined) return;
    const s = checkObject(field, value);
    const window = checkInt(`${field}.window`, s.window, 1, Number.MAX_SAFE_INTEGER);
    const updateStep = checkInt(`${field}.updateStep`, s.updateStep, 0, step);
    const windowStart = checkInt(`${field}.windowStart`, s.windowStart, 0, step);
    const base = (k: 'atUpdate' | 'atWindowStart' | 'atBlockStart'): number[] => {
      const xs = checkInts(`${field}.${k}`, s[k], this.tasks);
      const t = xs.findIndex((n, i) => n > (examples[i] ?? 0));
      if (t >= 0)
        throw new InvalidArgumentError(
          `${field}.${k}[${t}]`,
          `exceeds the examples served so far (${examples[t] ?? 0})`,
        );
      return [...xs];
    };
    this.state = {
      window,
      updateStep,
      atUpdate: base('atUpdate'),
      windowStart,
      atWindowStart: base('atWindowStart'),
      atBlockStart: base('atBlockStart'),
    };
  }

  /** Before planning `step`: a block boundary moves the window (one copy per `window` steps). */
  beginStep(step: number, examples: readonly number[]): void {
    const s = this.state;
    if (step === 0 || step % s.window !== 0) return;
    this.state = { ...s, windowStart: step - s.window, atWindowStart: s.atBlockStart, atBlockStart: [...examples] };
  }

  /** An update takes effect at `step`, before any of its rows is counted. */
  updateApplied(step: number, examples: readonly number[]): void {
    this.state = { ...this.state, updateStep: step, atUpdate: [...examples] };
  }

  /** The state for the resume token (shared, not copied: the encoder packs it at once). */
  get snapshot(): ShareState {
    return this.state;
  }
}

/** `examples − base` per task, into a fresh array (the wire message must not share live counts). */
export function countsSince(examples: readonly number[], base: readonly number[]): number[] {
  const out = new Array<number>(examples.length);
  for (let t = 0; t < examples.length; t++) out[t] = (examples[t] ?? 0) - (base[t] ?? 0);
  return out;
}
