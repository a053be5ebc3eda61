import { tilt, type Decision, type PolicyRule } from './rule.js';

/** ODM's reward smoothing factor (Albalak et al. 2023 use α = 0.9). */
const ALPHA = 0.9;

/**
 * ODM — Online Data Mixing (Albalak et al. 2023, "Efficient Online Data Mixing For Language Model
 * Pre-Training"): an EXP3 bandit whose arms are the mixture's selectors and whose reward is the
 * training loss, so arms the model still finds hard are drawn more. Per decision n:
 *   R_i ← α·R_i + (1 − α)·ℓ_i / π_i    (arms seen in the window; ℓ = mean token loss, π = current weight)
 *   ε_n = min(1/K, √(ln K / (K·n)))      η = lr, or ε_n when lr = 0 (the paper's schedule)
 *   π_i ← (1 − K·ε_n) · prior_i·exp(η·R_i) / Σ_j prior_j·exp(η·R_j) + ε_n
 * The paper's prior is uniform; here it is the stream's starting mixture.
 */
export const odm: PolicyRule = {
  defaultLr: 0,
  usesReference: false,
  decide(score: Float64Array, d: Decision): Float64Array {
    const K = score.length;
    for (let i = 0; i < K; i++) {
      const l = d.loss[i] ?? NaN;
      if (Number.isNaN(l)) continue;
      score[i] = ALPHA * (score[i] ?? 0) + ((1 - ALPHA) * l) / Math.max(d.current[i] ?? 0, 1e-6);
    }
    const eps = K > 1 ? Math.min(1 / K, Math.sqrt(Math.log(K) / (K * d.n))) : 0;
    const w = tilt(d.prior, score, d.lr > 0 ? d.lr : eps);
    for (let i = 0; i < K; i++) w[i] = (1 - K * eps) * w[i]! + eps;
    return w;
  },
};
