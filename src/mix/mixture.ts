import { InvalidArgumentError } from '../errors.js';
import type { PolicySpec } from './policy/policy-spec.js';
import { selectTasks, whyNoMatch, type SelectorIndex } from './selectors.js';

/** How a mixture splits a selector's weight among its tasks. */
export const WITHIN = ['proportional', 'uniform', 'temperature'] as const;
export type Within = (typeof WITHIN)[number];

export interface MixtureSpec {
  /** Selector → non-negative weight; empty means every train task in proportion to its size. */
  readonly weights: Readonly<Record<string, number>>;
  readonly within: Within;
  readonly temperature: number;
  /** FLAN-style cap on a task's record count before proportions are taken; 0 = none. */
  readonly cap: number;
  /** A closed-loop policy (stream specs only); absent = static. */
  readonly policy?: PolicySpec;
}

/** Largest mixture weight: far beyond any useful ratio, small enough that weight × records stays finite. */
export const MAX_WEIGHT = 1e12;

export const NATURAL: MixtureSpec = Object.freeze({ weights: {}, within: 'proportional', temperature: 1, cap: 0 });

/**
 * Turns a mixture into target proportions over task ids. `trainSize[t]` is the number of train
 * records task t can draw from (0 for held-out tasks). Errors name the offending field.
 */
export function resolveMixture(
  spec: MixtureSpec,
  index: SelectorIndex,
  trainSize: ArrayLike<number>,
  heldout: ReadonlySet<number>,
  field = 'mixture',
): Float64Array {
  if (!['proportional', 'uniform', 'temperature'].includes(spec.within)) {
    throw new InvalidArgumentError(`${field}.within`, `"${spec.within}" is not proportional, uniform or temperature`);
  }
  if (!(spec.temperature > 0) || !Number.isFinite(spec.temperature)) {
    throw new InvalidArgumentError(`${field}.temperature`, `must be a positive number, got ${spec.temperature}`);
  }
  if (!(spec.cap >= 0) || !Number.isInteger(spec.cap))
    throw new InvalidArgumentError(`${field}.cap`, `must be a non-negative integer, got ${spec.cap}`);
  const size = (t: number): number => {
    const n = trainSize[t] ?? 0;
    const capped = spec.cap > 0 ? Math.min(n, spec.cap) : n;
    if (capped === 0) return 0;
    if (spec.within === 'uniform') return 1;
    if (spec.within === 'temperature') return capped ** (1 / spec.temperature);
    return capped;
  };
  const { tasks } = index;
  const entries = Object.entries(spec.weights);
  const groups: [string, number, number[]][] =
    entries.length === 0
      ? [['(all train tasks)', 1, tasks.map((t) => t.id)]]
      : entries.map(([sel, w]) => {
          // Weights are relative; the bound keeps weight × task size finite (1e308 × a size makes NaN targets).
          if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > MAX_WEIGHT) {
            throw new InvalidArgumentError(
              `${field}.weights["${sel}"]`,
              `weight must be a finite non-negative number of at most ${MAX_WEIGHT} (weights are relative), got ${String(w)}`,
            );
          }
          const ids = selectTasks(sel, index);
          if (ids.length === 0) throw new InvalidArgumentError(`${field}.weights["${sel}"]`, whyNoMatch(sel, index));
          if (w > 0 && ids.every((t) => heldout.has(t))) {
            throw new InvalidArgumentError(
              `${field}.weights["${sel}"]`,
              'names only held-out tasks; they never appear in a train stream',
            );
          }
          return [sel, w, ids];
        });
  const owner = new Map<number, string>();
  for (const [sel, , ids] of groups) {
    for (const t of ids) {
      const other = owner.get(t);
      if (other !== undefined)
        throw new InvalidArgumentError(
          `${field}.weights`,
          `selectors "${other}" and "${sel}" overlap: both take task ${tasks[t]?.path ?? t} (a task gets its weight from one selector)`,
        );
      owner.set(t, sel);
    }
  }
  const target = new Float64Array(tasks.length);
  for (const [sel, w, ids] of groups) {
    const live = ids.filter((t) => !heldout.has(t));
    const total = live.reduce((s, t) => s + size(t), 0);
    if (!Number.isFinite(total))
      throw new InvalidArgumentError(
        `${field}.temperature`,
        `${spec.temperature} makes task sizes overflow; use a larger temperature`,
      );
    if (w > 0 && total === 0)
      throw new InvalidArgumentError(`${field}.weights["${sel}"]`, 'matches no task with train records');
    for (const t of live) if (total > 0) target[t] = (w * size(t)) / total;
  }
  const sum = target.reduce((a, b) => a + b, 0);
  if (!(sum > 0))
    throw new InvalidArgumentError(
      `${field}.weights`,
      'all weights are zero; give at least one selector a positive weight',
    );
  for (let t = 0; t < target.length; t++) target[t] = (target[t] ?? 0) / sum;
  return target;
}
