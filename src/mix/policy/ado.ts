import { fitPowerLaw, learningSpeed } from './power-law.js';
import type { Decision, PolicyRule } from './rule.js';

/** Points of (tokens seen, window loss) kept per arm for its fit; the oldest is overwritten. */
const POINTS = 8;
/** Points an arm needs before it is fitted; until every arm has them the weights stay. */
const MIN_POINTS = 3;
/** ADO's credit-assignment exponent s. */
const S = 0.5;
/** Per arm in `score`: tokens seen n, the policy average π̄, points recorded, then the points' n and loss. */
const N = 0;
const BAR = 1;
const COUNT = 2;
const WIDTH = 3 + 2 * POINTS;

/**
 * ADO — Adaptive Data Optimization (Jiang et al. 2024, "Adaptive Data Optimization: Dynamic Sample
 * Selection with Scaling Laws"): per arm a scaling law of its loss against the tokens it has
 * served, L_k(n) = ε_k + β_k·n^(−α_k), refitted at each decision on its last POINTS windows; the
 * mixture follows each arm's predicted learning speed:
 *   ρ_k ∝ μ_k · π̄_k^s · α_k·β_k·n_k^(−α_k−1)     (μ = prior, −dL̂_k/dn at n_k tokens seen, s = ½)
 *   π_k = γ·ρ_k + (1 − γ)·π̄_k                     γ = lr (default 0.1, at most 1)
 *   π̄_k ← ρ_k/(t + 1) + t·π̄_k/(t + 1)             (t = decisions before this one; π̄ starts at μ)
 * Until every arm has MIN_POINTS windows, or when no arm is still learning, the weights stay.
 */
export const ado: PolicyRule = {
  defaultLr: 0.1,
  usesReference: false,
  stateWidth: WIDTH,
  decide(score: Float64Array, d: Decision): Float64Array {
    const K = d.prior.length;
    const at = (k: number, f: number): number => k * WIDTH + f;
    if (d.n === 1) for (let k = 0; k < K; k++) score[at(k, BAR)] = d.prior[k]!;
    const speed = new Float64Array(K);
    let ready = true;
    for (let k = 0; k < K; k++) {
      const tokens = d.tokens[k] ?? 0;
      if (tokens > 0 && !Number.isNaN(d.loss[k]!)) {
        const n = (score[at(k, N)] = Math.max(score[at(k, N)]!, 0) + tokens);
        const c = Math.max(0, Math.floor(score[at(k, COUNT)]!));
        score[at(k, 3 + (c % POINTS))] = n;
        score[at(k, 3 + POINTS + (c % POINTS))] = d.loss[k]!;
        score[at(k, COUNT)] = c + 1;
      }
      const m = Math.min(POINTS, Math.max(0, Math.floor(score[at(k, COUNT)]!)));
      if (d.prior[k]! > 0 && m < MIN_POINTS) ready = false;
      if (m < MIN_POINTS) continue;
      const ns = Array.from(score.subarray(at(k, 3), at(k, 3 + m)));
      const ls = Array.from(score.subarray(at(k, 3 + POINTS), at(k, 3 + POINTS + m)));
      speed[k] = learningSpeed(fitPowerLaw(ns, ls), score[at(k, N)]!);
    }
    const rho = speed.map((v, k) => d.prior[k]! * Math.max(score[at(k, BAR)]!, 0) ** S * v);
    const total = rho.reduce((a, b) => a + b, 0);
    if (!ready || !(total > 0) || !Number.isFinite(total)) return Float64Array.from(d.current);
    const t = d.n - 1;
    const g = Math.min(d.lr, 1);
    const w = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      const r = rho[k]! / total;
      const bar = Math.max(score[at(k, BAR)]!, 0);
      w[k] = g * r + (1 - g) * bar;
      score[at(k, BAR)] = r / (t + 1) + (t * bar) / (t + 1);
    }
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((v) => v / sum);
  },
};
