import { tilt, type Decision, type PolicyRule } from './rule.js';

/** Scores are shifted so the largest is 0; one far below it is a weight of exactly 0 anyway. */
const FLOOR = -1e4;

/**
 * Excess-loss multiplicative weights, the online rule of DoReMi (Xie et al. 2023, "DoReMi:
 * Optimizing Data Mixtures Speeds Up Language Model Pretraining") with the reference model's
 * loss given per selector: arms whose loss stays above their reference gain weight.
 *   λ_i = max(ℓ_i − reference_i, 0)     (0 for arms not seen in the window)
 *   s_i ← s_i + η·λ_i                    η = lr (default 1, as in DoReMi)
 *   α_i = prior_i·exp(s_i) / Σ_j prior_j·exp(s_j)
 * i.e. α_t ∝ α_{t−1}·exp(η·λ_t) starting from the prior; smoothing toward the prior plays the part
 * of DoReMi's smoothing toward uniform.
 */
export const excessLoss: PolicyRule = {
  defaultLr: 1,
  usesReference: true,
  decide(score: Float64Array, d: Decision): Float64Array {
    for (let i = 0; i < score.length; i++) {
      const l = d.loss[i] ?? NaN;
      if (!Number.isNaN(l)) score[i] = (score[i] ?? 0) + d.lr * Math.max(l - (d.reference[i] ?? 0), 0);
    }
    const top = Math.max(...score);
    for (let i = 0; i < score.length; i++) score[i] = Math.max((score[i] ?? 0) - top, FLOOR);
    return tilt(d.prior, score, 1);
  },
};
