import type { TaskEntry } from '../index/format.js';
import type { MixtureSpec } from '../mix/mixture.js';
import { matchSelector, selectTasks, type SelectorIndex } from '../mix/selectors.js';
import type { HeldoutSpec } from './heldout.js';

/**
 * Which named held-out sets and mixtures this index cannot honour, and why. The release is
 * published per domain, so a corpus may hold only speech: a named set or mixture that names music
 * or audio tasks is then unavailable (using it is FAILED_PRECONDITION naming what is missing)
 * instead of stopping the whole server at start-up. Only absence counts here; any other fault in a
 * named set (overlapping selectors, all weights zero) still stops start-up, as a config error.
 */
export interface Availability {
  /** Unavailable held-out set name → the selectors and datasets it names that the index lacks. */
  readonly heldout: ReadonlyMap<string, readonly string[]>;
  /** Unavailable mixture name → the selectors it weights that match no task of the index. */
  readonly mixtures: ReadonlyMap<string, readonly string[]>;
}

/** Selectors of a held-out set that match no task of the index, and its datasets (`dataset NAME`) the index lacks. */
export function missingForHeldout(
  spec: Partial<HeldoutSpec>,
  tasks: readonly TaskEntry[],
  datasets: ReadonlyMap<string, unknown>,
): string[] {
  const missing = (spec.selectors ?? []).filter((s) => matchSelector(s, tasks).length === 0);
  for (const d of spec.datasets ?? []) if (!datasets.has(d)) missing.push(`dataset ${d}`);
  return missing;
}

/** Selectors a mixture weights that match no task of the index, sorted (weights are a map). */
export function missingForMixture(spec: Partial<MixtureSpec>, index: SelectorIndex): string[] {
  return Object.keys(spec.weights ?? {})
    .filter((s) => selectTasks(s, index).length === 0)
    .sort();
}

export function availability(
  heldoutSets: Readonly<Record<string, Partial<HeldoutSpec>>>,
  mixtures: Readonly<Record<string, Partial<MixtureSpec>>>,
  index: SelectorIndex,
): Availability {
  const collect = <T>(
    named: Readonly<Record<string, T>>,
    missingOf: (v: T) => string[],
  ): Map<string, readonly string[]> => {
    const out = new Map<string, readonly string[]>();
    for (const [name, spec] of Object.entries(named).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const missing = missingOf(spec);
      if (missing.length > 0) out.set(name, missing);
    }
    return out;
  };
  return {
    heldout: collect(heldoutSets, (s) => missingForHeldout(s, index.tasks, index.datasets)),
    mixtures: collect(mixtures, (m) => missingForMixture(m, index)),
  };
}

/** One start-up log line per unavailable set or mixture (empty when everything is available). */
export function describeAvailability(a: Availability): string[] {
  const line = (kind: string, name: string, missing: readonly string[]): string =>
    `${kind} "${name}" is unavailable on this index: it names ${missing.join(', ')}, which the index does not hold (using it fails with FAILED_PRECONDITION)`;
  return [
    ...[...a.heldout].map(([n, m]) => line('held-out set', n, m)),
    ...[...a.mixtures].map(([n, m]) => line('mixture', n, m)),
  ];
}
