import type { CorpusInfo, TaskInfo } from './wire-types.js';

/**
 * Partial mixture updates (the Python client's `flanstream.mixture_merge`, same rules). An update
 * replaces the whole mixture: every task its weights do not name gets weight 0, so
 * `updateMixture({ speech: 0.8 }, step)` on a speech/music/audio mixture would silently make the
 * stream 100 % speech. Compared with the mixture in effect just before the update's step:
 * - `merge` undefined (default): an update leaving out a selector (or task) of positive weight
 *   throws a TypeError listing them; name them, with 0 to drop one deliberately;
 * - `merge: true`: the update's selectors replace the overlapping entries of the current weights,
 *   the others keep theirs (weights are relative: `{ speech: 0.8 }` merged into
 *   `{ speech: 0.5, music: 0.25, audio: 0.25 }` gives speech 0.8 / 1.3 ≈ 62 % of examples);
 * - `merge: false`: the update replaces the mixture as given.
 * A selector names a task when it equals its domain, its `domain/major` or its full path; an axis
 * selector (`ug:<value>`, `unseen:true|false`, `dataset:NN_Name`, `source:<value>`) names the tasks
 * whose train records all carry that value (for `source`, a list: every train record lists it).
 */
export type Weights = Readonly<Record<string, number>>;

const LISTED = 12;

/** The source datasets of GetCorpusInfo, for `dataset:` selectors. */
export type Datasets = CorpusInfo['datasets'];

function tasksOf(selector: string, tasks: readonly TaskInfo[], datasets: Datasets): string[] {
  const colon = selector.indexOf(':');
  const [axis, value] = colon < 0 ? ['', ''] : [selector.slice(0, colon), selector.slice(colon + 1)];
  let keep = (t: TaskInfo): boolean =>
    selector === t.domain || selector === `${t.domain}/${t.major}` || selector === t.path;
  if (axis === 'ug') keep = (t) => t.ug === value;
  else if (axis === 'unseen') keep = (t) => String(t.unseen) === value;
  else if (axis === 'source') keep = (t) => t.sources.includes(value);
  else if (axis === 'dataset') {
    const homes = new Map<string, string[]>();
    for (const d of datasets)
      for (const c of d.tasks)
        if (Number(c.trainRecords) > 0) homes.set(c.task, [...(homes.get(c.task) ?? []), d.name]);
    keep = (t) => homes.get(t.path)?.join('\u0000') === value;
  }
  return tasks.filter(keep).map((t) => t.path);
}

function listing(names: readonly string[]): string {
  const sorted = [...names].sort();
  const shown = sorted
    .slice(0, LISTED)
    .map((n) => JSON.stringify(n))
    .join(', ');
  return sorted.length > LISTED ? `${shown}, … (${sorted.length} in all)` : shown;
}

/** Left-out entries for a message: a domain whose every weighted task is left out is named once. */
function compact(leftOut: ReadonlyMap<string, string[]>, current: Weights, tasks: readonly TaskInfo[]): string[] {
  const domain = new Map(tasks.map((t) => [t.path, t.domain]));
  const names = [...leftOut.keys()].filter((s) => !domain.has(s));
  const byDomain = new Map<string, string[]>();
  for (const s of leftOut.keys())
    if (domain.has(s)) byDomain.set(domain.get(s)!, [...(byDomain.get(domain.get(s)!) ?? []), s]);
  for (const [d, paths] of byDomain) {
    const weighted = Object.entries(current).filter(([p, w]) => w > 0 && domain.get(p) === d).length;
    names.push(...(weighted === paths.length ? [d] : paths));
  }
  return names;
}

/**
 * The weights to send for `update` given the `current` mixture (selector or task path → weight;
 * null when the client cannot know it). Throws TypeError as described above.
 */
export function resolveUpdateWeights(
  update: Weights,
  current: Weights | null,
  tasks: readonly TaskInfo[],
  merge: boolean | undefined,
  datasets: Datasets = [],
): Record<string, number> {
  if (merge === false) return { ...update };
  const covered = new Set(Object.keys(update).flatMap((s) => tasksOf(s, tasks, datasets)));
  if (merge === undefined && tasks.length > 0 && covered.size === tasks.length) return { ...update }; // names every task
  if (current === null) {
    throw new TypeError(
      'cannot tell which selectors this update would leave out: the current weights are not known to the client (a named or natural mixture, ' +
        "or a restored state, before the first batch; each batch's stats carry the targets). Take at least one batch first, or pass " +
        '{ merge: false } to replace the whole mixture (unnamed tasks get weight 0)',
    );
  }
  const leftOut = new Map<string, string[]>();
  const partial: string[] = [];
  for (const [sel, w] of Object.entries(current)) {
    if (!(w > 0)) continue;
    const mine = tasksOf(sel, tasks, datasets);
    const missing = mine.filter((p) => !covered.has(p));
    if (missing.length > 0) leftOut.set(sel, missing);
    if (missing.length > 0 && missing.length < mine.length) partial.push(sel);
  }
  if (merge === undefined) {
    if (leftOut.size > 0) {
      throw new TypeError(
        `updateMixture(${JSON.stringify(update)}) would give weight 0 to ${listing(compact(leftOut, current, tasks))} (currently positive, not named ` +
          'by the update: an update replaces the whole mixture). Name them (with 0 to drop one deliberately), or pass { merge: true } to keep ' +
          'their current weights, or { merge: false } to zero them',
      );
    }
    return { ...update };
  }
  if (partial.length > 0) {
    throw new TypeError(
      `cannot merge: the update names part of ${listing(partial)} (e.g. ${listing(leftOut.get(partial[0]!)!.slice(0, 3))} would be left without a weight); name each of them whole or not at all`,
    );
  }
  const merged: Record<string, number> = {};
  for (const [sel, w] of Object.entries(current)) if (leftOut.has(sel)) merged[sel] = w;
  return { ...merged, ...update };
}
