import { InvalidArgumentError } from '../errors.js';

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

  /**
   * `restored` is a token's section, already checked for shape (token-state-check.ts); a
   * baseline above the running counts (`examples`) would make a negative count and is refused.
   */
  constructor(tasks: number, window: number, restored: ShareState | undefined, examples: readonly number[]) {
    if (restored) {
      for (const k of ['atUpdate', 'atWindowStart', 'atBlockStart'] as const) {
        const t = restored[k].findIndex((n, i) => n > (examples[i] ?? 0));
        if (t >= 0) throw new InvalidArgumentError(`resume.token.state.shares.${k}[${t}]`, `exceeds the examples served so far (${examples[t] ?? 0})`);
      }
      this.state = structuredClone(restored);
    } else {
      // A fresh stream, or a token from before these figures existed: they start at the token's step.
      const base = [...examples];
      this.state = { window, updateStep: 0, atUpdate: base, windowStart: 0, atWindowStart: [...base], atBlockStart: [...base] };
      if (base.length !== tasks) throw new RangeError(`share baselines for ${base.length} tasks, expected ${tasks}`);
    }
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
