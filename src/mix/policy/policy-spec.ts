import { InvalidArgumentError } from '../../errors.js';
import { POLICIES, type PolicyName } from './registry.js';

/**
 * A mixture's closed-loop policy (docs/closed-loop.md): which rule turns loss reports into weights, and
 * its knobs. Absent on a mixture = "static" (reports change nothing), so the specs, hashes and
 * tokens of streams without a policy are exactly what they were before policies existed.
 */
export interface PolicySpec {
  readonly name: PolicyName;
  /** The policy decides after every `everySteps` reported steps (a window of reports). */
  readonly everySteps: number;
  /** The decision from the report of step s applies at step s + lagSteps. */
  readonly lagSteps: number;
  /** Learning rate; 0 asks the rule for its default (odm: its ε schedule). */
  readonly lr: number;
  /** In [0, 1]: weights ← (1 − smoothing)·weights + smoothing·prior. */
  readonly smoothing: number;
  /** Floor on every arm's weight. */
  readonly minWeight: number;
  /** excess-loss: reference loss per arm selector. */
  readonly reference: Readonly<Record<string, number>>;
}

export const DEFAULT_LAG_STEPS = 8;
/** Bounds the reports a stream holds (at most lag_steps + 1 steps of them) and the token. */
export const MAX_LAG_STEPS = 4096;
const MAX_EVERY_STEPS = 1 << 20;

export interface RawPolicy {
  policy?: string;
  everySteps?: number;
  lagSteps?: number;
  lr?: number;
  smoothing?: number;
  minWeight?: number;
  reference?: Record<string, number>;
}

const finite = (field: string, v: number, lo: number, hi: number): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi)
    throw new InvalidArgumentError(field, `must be a finite number in [${lo}, ${hi}], got ${String(v)}`);
  return v;
};
const int = (field: string, v: number, lo: number, hi: number): number => {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new InvalidArgumentError(field, `must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
};

/** The policy of a raw mixture (proto fields; zero = default), or undefined for "static". */
export function parsePolicy(raw: RawPolicy, field = 'mixture'): PolicySpec | undefined {
  const name = raw.policy || 'static';
  const reference = raw.reference ?? {};
  const rule = Object.hasOwn(POLICIES, name) ? POLICIES[name as keyof typeof POLICIES] : undefined;
  if (!rule)
    throw new InvalidArgumentError(`${field}.policy`, `"${name}" is not one of ${Object.keys(POLICIES).join(', ')}`);
  if (rule === POLICIES.static) {
    const knobs = (['everySteps', 'lagSteps', 'lr', 'smoothing', 'minWeight'] as const).filter((k) => raw[k]);
    if (knobs.length > 0 || Object.keys(reference).length > 0) {
      throw new InvalidArgumentError(
        `${field}.policy`,
        `${[...knobs, ...(Object.keys(reference).length ? ['reference'] : [])].join(', ')} need a policy (${Object.keys(
          POLICIES,
        )
          .filter((p) => p !== 'static')
          .join(', ')}); "static" never changes the weights`,
      );
    }
    return undefined;
  }
  for (const [sel, v] of Object.entries(reference)) finite(`${field}.reference["${sel}"]`, v, 0, Number.MAX_VALUE);
  if (!rule.usesReference && Object.keys(reference).length > 0)
    throw new InvalidArgumentError(`${field}.reference`, `policy "${name}" takes no reference losses`);
  return {
    name: name as PolicyName,
    everySteps: raw.everySteps ? int(`${field}.every_steps`, raw.everySteps, 1, MAX_EVERY_STEPS) : 1,
    lagSteps: raw.lagSteps ? int(`${field}.lag_steps`, raw.lagSteps, 1, MAX_LAG_STEPS) : DEFAULT_LAG_STEPS,
    lr: raw.lr ? finite(`${field}.lr`, raw.lr, 0, 1e6) : rule.defaultLr,
    smoothing: finite(`${field}.smoothing`, raw.smoothing ?? 0, 0, 1),
    minWeight: finite(`${field}.min_weight`, raw.minWeight ?? 0, 0, 1),
    // Sorted: protobuf maps have no wire order, and the spec is hashed.
    reference: Object.fromEntries(Object.entries(reference).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
}

/** A policy from a resume token's spec must be one `parsePolicy` makes (a token is client input). */
export function checkPolicySpec(value: unknown, field: string): void {
  const p = value as Partial<PolicySpec> | null;
  const again =
    typeof p === 'object' && p !== null
      ? parsePolicy(
          {
            policy: String(p.name),
            everySteps: p.everySteps,
            lagSteps: p.lagSteps,
            lr: p.lr,
            smoothing: p.smoothing,
            minWeight: p.minWeight,
            reference: p.reference,
          },
          field,
        )
      : undefined;
  if (!again || JSON.stringify(again) !== JSON.stringify(value))
    throw new InvalidArgumentError(
      field,
      'is not a policy this server makes (a field is missing, added or out of range)',
    );
}
