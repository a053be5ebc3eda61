import type { TaskEntry } from '../../src/index/format.js';

export interface MixtureCase {
  readonly weights?: Record<string, number>;
  readonly within?: 'proportional' | 'uniform' | 'temperature';
  readonly temperature?: number;
  readonly cap?: number;
}

/**
 * The mixture rules of docs/service.md written out independently of src/mix: a selector's weight spreads over its live
 * tasks by record count (capped), uniformly, or by count^(1/T); no weights = every live task by
 * count; the result is normalized to sum 1. `trainSize[t]` is 0 for held-out tasks.
 */
export function expectedTargets(m: MixtureCase, tasks: readonly TaskEntry[], trainSize: readonly number[]): number[] {
  const within = m.within ?? 'proportional';
  const size = (t: number): number => {
    const n = m.cap ? Math.min(trainSize[t] ?? 0, m.cap) : (trainSize[t] ?? 0);
    if (n === 0) return 0;
    return within === 'uniform' ? 1 : within === 'temperature' ? n ** (1 / (m.temperature ?? 1)) : n;
  };
  const weights = m.weights && Object.keys(m.weights).length > 0 ? m.weights : { '': 1 };
  const out = tasks.map(() => 0);
  for (const [sel, w] of Object.entries(weights)) {
    const ids = tasks
      .filter((t) => sel === '' || sel === t.domain || sel === `${t.domain}/${t.major}` || sel === t.path)
      .map((t) => t.id);
    const total = ids.reduce((s, t) => s + size(t), 0);
    for (const t of ids) if (total > 0) out[t] = (w * size(t)) / total;
  }
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((x) => x / sum);
}

/** Largest absolute difference between realized shares of `counts` and `target`, per task and per group. */
export function worstDeviation(
  counts: readonly number[],
  target: readonly number[],
  groupOf?: (t: number) => string,
): { task: number; group: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let task = 0;
  const groups = new Map<string, [number, number]>();
  counts.forEach((c, t) => {
    task = Math.max(task, Math.abs(c / n - (target[t] ?? 0)));
    if (groupOf) {
      const g = groups.get(groupOf(t)) ?? [0, 0];
      groups.set(groupOf(t), [g[0] + c / n, g[1] + (target[t] ?? 0)]);
    }
  });
  const group = Math.max(0, ...[...groups.values()].map(([a, b]) => Math.abs(a - b)));
  return { task, group };
}
