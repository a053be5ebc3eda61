import { InvalidArgumentError } from '../../errors.js';
import type { MixtureSpec } from '../mixture.js';
import { selectTasks, type SelectorIndex } from '../selectors.js';

/**
 * What a policy reweights: the mixture's selectors with a positive share (or, for a mixture of
 * natural proportions, the domains), each with its prior weight (its share of the starting
 * target) and the tasks it owns. A policy's weights go back into the mixture as selector weights,
 * so the split within each arm stays what the mixture says.
 */
export interface Arms {
  readonly selectors: readonly string[];
  readonly prior: Float64Array;
  /** Task id → arm index, -1 for tasks no arm serves. */
  readonly taskArm: Int32Array;
}

export function policyArms(
  mixture: MixtureSpec,
  index: SelectorIndex,
  target: Float64Array,
  domains: readonly string[],
  field = 'mixture',
): Arms {
  const named = Object.keys(mixture.weights);
  const candidates = named.length > 0 ? named : domains;
  const taskArm = new Int32Array(index.tasks.length).fill(-1);
  const selectors: string[] = [];
  const prior: number[] = [];
  for (const sel of candidates) {
    const ids = selectTasks(sel, index);
    const share = ids.reduce((s, t) => s + (target[t] ?? 0), 0);
    if (!(share > 0)) continue;
    for (const t of ids) taskArm[t] = selectors.length;
    selectors.push(sel);
    prior.push(share);
  }
  if (selectors.length === 0)
    throw new InvalidArgumentError(`${field}.policy`, 'the mixture serves nothing a policy could reweight');
  const total = prior.reduce((a, b) => a + b, 0);
  return { selectors, prior: Float64Array.from(prior, (p) => p / total), taskArm };
}
