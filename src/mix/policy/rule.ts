/** What a rule sees at a decision: per arm, the window's mean token loss (NaN = no tokens seen). */
export interface Decision {
  readonly loss: Float64Array;
  /** The window's reported tokens per arm. */
  readonly tokens: Float64Array;
  /** The normalized prior weights (the mixture the stream started with). */
  readonly prior: Float64Array;
  /** The weights the policy served since its last decision. */
  readonly current: Float64Array;
  /** excess-loss: reference loss per arm. */
  readonly reference: Float64Array;
  readonly lr: number;
  /** 1 for the first decision. */
  readonly n: number;
}

/**
 * A reweighting rule: updates its per-arm `score` (stateWidth numbers per arm, arm-major) (kept in the resume token) in place and returns
 * the new weights, before smoothing and the floor (which every policy shares, policy-runner.ts).
 */
export interface PolicyRule {
  readonly defaultLr: number;
  readonly usesReference: boolean;
  /** Numbers per arm the rule keeps in `score` (1 when absent). */
  readonly stateWidth?: number;
  decide(score: Float64Array, d: Decision): Float64Array;
}

/** prior_i · exp(score_i), normalized; shifted by the largest score so nothing overflows. */
export function tilt(prior: Float64Array, score: Float64Array, scale: number): Float64Array {
  let top = -Infinity;
  for (let i = 0; i < score.length; i++) if ((prior[i] ?? 0) > 0) top = Math.max(top, scale * (score[i] ?? 0));
  const w = new Float64Array(prior.length);
  let sum = 0;
  for (let i = 0; i < w.length; i++) {
    w[i] = (prior[i] ?? 0) * Math.exp(scale * (score[i] ?? 0) - top);
    sum += w[i]!;
  }
  for (let i = 0; i < w.length; i++) w[i] = w[i]! / sum;
  return w;
}
