import { InvalidArgumentError } from '../../errors.js';
import type { MixtureSpec } from '../mixture.js';
import type { Arms } from './arms.js';
import type { PolicySpec } from './policy-spec.js';
import { POLICIES } from './registry.js';

/** One task's summed token loss over a global step (all ranks) and its token count. */
export interface TaskLoss {
  readonly task: number;
  readonly lossSum: number;
  readonly tokens: number;
}

/** A trainer's per-task losses of one global step, checked (loss-report.ts) and sorted by task. */
export interface LossReport {
  readonly step: number;
  readonly losses: readonly TaskLoss[];
}

/** What a policy remembers between steps; it rides in the resume token. */
export interface PolicyState {
  /** Decisions made so far. */
  readonly n: number;
  /** The rule's per-arm score (odm: smoothed reward; excess-loss: log-weight; ado: its fit's points, see ado.ts). */
  readonly score: number[];
  /** The weights of the last decision (the prior before the first). */
  readonly weights: number[];
  /** The open window: summed loss and tokens per arm since the last decision. */
  readonly winLoss: number[];
  readonly winTokens: number[];
  /** The mean token loss per arm the last decision saw (-1: none seen); shown on the status page. */
  readonly seen: number[];
}

/**
 * Checks a policy state from a resume token (client input: unsigned tokens can be re-encoded at
 * will): one entry per arm in every list, every number finite and in range, the weights a
 * distribution; a bad field is refused naming it, so no NaN ever reaches a mixture.
 */
export function checkPolicyState(value: unknown, field: string, arms: number, width = 1): asserts value is PolicyState {
  const refuse = (f: string, msg: string): never => {
    throw new InvalidArgumentError(f, msg);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(field, 'must be an object');
  const s = value as Record<string, unknown>;
  for (const key of Object.keys(s))
    if (!['n', 'score', 'weights', 'winLoss', 'winTokens', 'seen'].includes(key))
      refuse(`${field}.${key}`, 'is not part of a token this server makes');
  if (!Number.isSafeInteger(s.n) || (s.n as number) < 0)
    refuse(`${field}.n`, `must be a non-negative integer, got ${String(s.n)}`);
  const nums = (name: string, ok: (v: number) => boolean, range: string, per = 1): number[] => {
    const xs = s[name];
    if (!Array.isArray(xs) || xs.length !== arms * per)
      refuse(`${field}.${name}`, `must list ${per === 1 ? 'one number' : `${per} numbers`} per arm (${arms})`);
    (xs as unknown[]).forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
        refuse(`${field}.${name}[${i}]`, `must be ${range}, got ${String(v)}`);
    });
    return xs as number[];
  };
  nums('score', () => true, 'a finite number', width);
  const weights = nums('weights', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  nums('winLoss', (v) => v >= 0, 'a finite non-negative number');
  nums('winTokens', (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
  nums('seen', (v) => v >= 0 || v === -1, 'a non-negative loss or -1');
  const sum = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) refuse(`${field}.weights`, `must sum to 1, got ${sum}`);
}

/**
 * A window's mean token loss above this is taken as this: far above any cross-entropy a model
 * reports (ln of a 160k vocabulary is 12), and small enough that every rule's arithmetic stays
 * finite (odm divides by weights down to 1e-6, lr goes up to 1e6): a report's loss_sum may be any
 * finite number, up to 1.8e308.
 */
export const MAX_TOKEN_LOSS = 1e6;
/** A window's summed loss stops here (finite; its mean is capped at MAX_TOKEN_LOSS anyway). */
const MAX_WINDOW_LOSS = 1e300;

/**
 * Runs a policy over a train stream's reports in step order. The planner calls `consume` for
 * the report of step s (or undefined: a missing report is no error, it just adds nothing) while
 * it plans step s + lag_steps, so what the policy knows at a step never depends on when reports
 * arrived, only on which ones did.
 */
export class PolicyRunner {
  readonly spec: PolicySpec;
  readonly arms: Arms;
  private n = 0;
  private readonly score: Float64Array;
  private readonly width: number;
  private weights: Float64Array;
  private readonly winLoss: Float64Array;
  private readonly winTokens: Float64Array;
  private readonly reference: Float64Array;
  private readonly seen: Float64Array;

  constructor(spec: PolicySpec, arms: Arms, field = 'mixture') {
    this.spec = spec;
    this.arms = arms;
    const K = arms.selectors.length;
    this.width = POLICIES[spec.name].stateWidth ?? 1;
    if (spec.minWeight * K > 1)
      throw new InvalidArgumentError(
        `${field}.min_weight`,
        `${spec.minWeight} × ${K} arms exceeds 1; use at most ${1 / K}`,
      );
    this.reference = Float64Array.from(arms.selectors, (sel) => spec.reference[sel] ?? NaN);
    if (POLICIES[spec.name].usesReference) {
      const missing = arms.selectors.filter((_, i) => Number.isNaN(this.reference[i]));
      if (missing.length > 0)
        throw new InvalidArgumentError(
          `${field}.reference`,
          `policy "${spec.name}" needs a reference loss for every selector it reweights; missing: ${missing.join(', ')}`,
        );
      const extra = Object.keys(spec.reference).filter((sel) => !arms.selectors.includes(sel));
      if (extra.length > 0)
        throw new InvalidArgumentError(
          `${field}.reference`,
          `${extra.join(', ')} is not a selector of the mixture with a positive weight (${arms.selectors.join(', ')})`,
        );
    }
    this.score = new Float64Array(K * this.width);
    this.weights = Float64Array.from(arms.prior);
    this.winLoss = new Float64Array(K);
    this.winTokens = new Float64Array(K);
    this.seen = new Float64Array(K).fill(-1);
  }

  /** Restores a token's `policy` section, checked once, here (checkPolicyState). */
  restore(value: unknown, field: string): void {
    checkPolicyState(value, field, this.arms.selectors.length, this.width);
    this.n = value.n;
    this.score.set(value.score);
    this.weights = Float64Array.from(value.weights);
    this.winLoss.set(value.winLoss);
    this.winTokens.set(value.winTokens);
    this.seen.set(value.seen);
  }

  /** The policy's current weights per arm. */
  get current(): Float64Array {
    return this.weights;
  }

  get decisions(): number {
    return this.n;
  }

  /** Adds the report of step `s` to the window; at the window's end decides, returning the new weights (or undefined). */
  consume(s: number, report: LossReport | undefined): Float64Array | undefined {
    for (const l of report?.losses ?? []) {
      const a = this.arms.taskArm[l.task] ?? -1;
      if (a < 0) continue;
      this.winLoss[a] = Math.min(this.winLoss[a]! + l.lossSum, MAX_WINDOW_LOSS);
      this.winTokens[a] = this.winTokens[a]! + l.tokens;
    }
    if ((s + 1) % this.spec.everySteps !== 0) return undefined;
    const loss = this.winLoss.map((sum, a) =>
      this.winTokens[a]! > 0 ? Math.min(sum / this.winTokens[a]!, MAX_TOKEN_LOSS) : NaN,
    );
    const tokens = Float64Array.from(this.winTokens);
    this.winLoss.fill(0);
    this.winTokens.fill(0);
    // A window without any report decides nothing: the weights stay, and so does the schedule.
    if (loss.every(Number.isNaN)) return undefined;
    this.n++;
    loss.forEach((l, a) => (this.seen[a] = Number.isNaN(l) ? -1 : l));
    const { prior } = this.arms;
    const raw = POLICIES[this.spec.name].decide(this.score, {
      loss,
      tokens,
      prior,
      current: this.weights,
      reference: this.reference,
      lr: this.spec.lr,
      n: this.n,
    });
    this.weights = shape(raw, prior, this.spec.smoothing, this.spec.minWeight);
    // Every token minted from here on carries this state: one a resume would refuse is a defect
    // to report now, not a checkpoint to lose later.
    try {
      checkPolicyState(this.state(), 'policy', this.arms.selectors.length, this.width);
    } catch (err) {
      throw new Error(
        `policy ${this.spec.name}: the state after the decision of step ${s} could not be resumed (${(err as Error).message})`,
        { cause: err },
      );
    }
    return this.weights;
  }

  /** The mixture that serves `weights`: the current one with the arms as its selectors. */
  mixture(current: MixtureSpec, weights: Float64Array): MixtureSpec {
    const { within, temperature, cap } = current;
    return {
      weights: Object.fromEntries(this.arms.selectors.map((sel, a) => [sel, weights[a] ?? 0])),
      within,
      temperature,
      cap,
    };
  }

  state(): PolicyState {
    return {
      n: this.n,
      score: Array.from(this.score),
      weights: Array.from(this.weights),
      winLoss: Array.from(this.winLoss),
      winTokens: Array.from(this.winTokens),
      seen: Array.from(this.seen),
    };
  }
}

/** Smoothing toward the prior, then the floor: arms under it are raised to it and the rest scaled down. */
export function shape(w: Float64Array, prior: Float64Array, smoothing: number, floor: number): Float64Array {
  const out = w.map((v, i) => (1 - smoothing) * v + smoothing * (prior[i] ?? 0));
  const fixed = new Uint8Array(out.length);
  for (let round = 0; round < out.length; round++) {
    let free = 0;
    let budget = 1;
    let open = 0;
    for (let i = 0; i < out.length; i++) {
      if (fixed[i]) budget -= floor;
      else {
        free += out[i]!;
        open++;
      }
    }
    const scaled = (i: number): number => (free > 0 ? (out[i]! * budget) / free : budget / open);
    let changed = false;
    for (let i = 0; i < out.length; i++) {
      if (fixed[i]) continue;
      const v = scaled(i);
      if (v < floor) {
        fixed[i] = 1;
        changed = true;
      }
    }
    if (!changed) {
      for (let i = 0; i < out.length; i++) out[i] = fixed[i] ? floor : scaled(i);
      return out;
    }
  }
  return out.fill(1 / out.length);
}
