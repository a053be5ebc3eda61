import type { TaskEntry } from '../index/format.js';

/**
 * A selector is a prefix of a task's `domain/major/minor` path. Task names may themselves contain
 * "/" ("Speech/Silence/Music/Noise Classification"), so matching compares whole components: a
 * selector equals the task's domain, its domain/major, or its full path.
 */
export function selectorLevels(t: Pick<TaskEntry, 'domain' | 'major' | 'path'>): readonly [string, string, string] {
  return [t.domain, `${t.domain}/${t.major}`, t.path];
}

export function matches(selector: string, t: Pick<TaskEntry, 'domain' | 'major' | 'path'>): boolean {
  return selectorLevels(t).includes(selector);
}

/** Task ids matched by `selector`, in id order. */
export function matchSelector(selector: string, tasks: readonly TaskEntry[]): number[] {
  return tasks.filter((t) => matches(selector, t)).map((t) => t.id);
}
