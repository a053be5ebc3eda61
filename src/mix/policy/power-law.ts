/**
 * Least-squares fit of a saturating power law L(n) = ε + β·n^(−α) to points (n_i, L_i), as ADO fits
 * loss against tokens seen. Deterministic (a fixed grid over α, each step closed-form least squares
 * for ε and β), so replaying the same points gives bit-identical fits: a resumed stream must make
 * the decisions the uninterrupted one made.
 */
export interface PowerLaw {
  readonly alpha: number;
  readonly beta: number;
  readonly epsilon: number;
}

/** α from ALPHA_STEP to ALPHA_MAX (ADO bounds α to (0, 0.8]). */
const ALPHA_STEP = 0.02;
const ALPHA_MAX = 0.8;

export function fitPowerLaw(n: readonly number[], loss: readonly number[]): PowerLaw {
  const m = n.length;
  let best: PowerLaw = { alpha: ALPHA_STEP, beta: 0, epsilon: loss.reduce((a, b) => a + b, 0) / m };
  let bestErr = Infinity;
  for (let k = 1; k * ALPHA_STEP <= ALPHA_MAX + 1e-9; k++) {
    const alpha = k * ALPHA_STEP;
    const x = n.map((v) => v ** -alpha);
    const mx = x.reduce((a, b) => a + b, 0) / m;
    const ml = loss.reduce((a, b) => a + b, 0) / m;
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < m; i++) {
      sxy += (x[i]! - mx) * (loss[i]! - ml);
      sxx += (x[i]! - mx) ** 2;
    }
    let beta = sxx > 0 ? Math.max(sxy / sxx, 0) : 0;
    let epsilon = ml - beta * mx;
    if (epsilon < 0) {
      // The asymptote of a loss is not negative: fit through the origin instead.
      epsilon = 0;
      const xx = x.reduce((a, v) => a + v * v, 0);
      beta = xx > 0 ? Math.max(x.reduce((a, v, i) => a + v * loss[i]!, 0) / xx, 0) : 0;
    }
    let err = 0;
    for (let i = 0; i < m; i++) err += (epsilon + beta * x[i]! - loss[i]!) ** 2;
    if (err < bestErr) {
      bestErr = err;
      best = { alpha, beta, epsilon };
    }
  }
  return best;
}

/** The predicted learning speed −dL/dn = α·β·n^(−α−1) at n tokens. */
export function learningSpeed(f: PowerLaw, n: number): number {
  return n > 0 ? f.alpha * f.beta * n ** (-f.alpha - 1) : 0;
}
