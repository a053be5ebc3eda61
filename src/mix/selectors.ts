import type { DatasetEntry } from '../index/datasets.js';
import type { TaskEntry } from '../index/format.js';
import { recordsSources, taskSources, type SourceColumns } from './source-axis.js';

/**
 * Mixture selectors. A plain selector is a prefix of a task's `domain/major/minor` path. Task
 * names may themselves contain "/" ("Speech/Silence/Music/Noise Classification"), so matching
 * compares whole components: a selector equals the task's domain, its domain/major, or its full
 * path. An axis selector `axis:value` names the tasks with that value on another axis of the
 * index (AXES). Paths start with a domain (speech, music, audio), so the prefixes never clash.
 *
 * The sampler draws whole tasks, so an axis selector selects whole tasks: a task matches when
 * every record it can train on carries the value. Where the axis is a property of the task (ug,
 * and unseen as the held-out `unseen_flag` reads it) that is every task with the value; a task
 * whose train records come from several datasets matches none of their `dataset:` selectors, so
 * nothing served under `dataset:A` comes from another dataset. A record's `source` is a list
 * (source-axis.ts): `source:X` takes the tasks whose every train record lists X, so a task whose
 * records all list X and Y is in both groups (one mixture weighting both is refused as
 * overlapping), and a task where only some records list X is in none (a filter takes those).
 */
export function selectorLevels(t: Pick<TaskEntry, 'domain' | 'major' | 'path'>): readonly [string, string, string] {
  return [t.domain, `${t.domain}/${t.major}`, t.path];
}

export function matches(selector: string, t: Pick<TaskEntry, 'domain' | 'major' | 'path'>): boolean {
  return selectorLevels(t).includes(selector);
}

/** Task ids whose path `selector` is a prefix of, in id order (held-out sets take only these). */
export function matchSelector(selector: string, tasks: readonly TaskEntry[]): number[] {
  return tasks.filter((t) => matches(selector, t)).map((t) => t.id);
}

/** What axis selectors are resolved against: the tasks and the source datasets of an index, and for `source:` its columns (an IndexReader). */
export interface SelectorIndex extends Partial<Omit<SourceColumns, 'tasks'>> {
  readonly tasks: readonly TaskEntry[];
  readonly datasets: ReadonlyMap<string, DatasetEntry>;
}

/** Per task: the values every train record carries on an axis (what its selectors take), and those some carry. */
interface AxisValues {
  readonly every: readonly string[];
  readonly some: readonly string[];
}

/** One axis: its values per task id. */
interface Axis {
  values(index: SelectorIndex): readonly AxisValues[];
  /** What a value looks like, for error messages. */
  readonly hint: string;
}

/** A property of the task: every record has it. */
const taskProperty = (v: string): AxisValues => ({ every: [v], some: [v] });

/** Per index: the train datasets of every task (a task's records may come from several). */
const datasetsByIndex = new WeakMap<SelectorIndex, readonly AxisValues[]>();

function taskDatasets(index: SelectorIndex): readonly AxisValues[] {
  let out = datasetsByIndex.get(index);
  if (!out) {
    const id = new Map(index.tasks.map((t) => [t.path, t.id]));
    const lists: string[][] = index.tasks.map(() => []);
    for (const d of index.datasets.values())
      for (const [path, counts] of d.tasks) if (counts[0] > 0) lists[id.get(path) ?? -1]?.push(d.name);
    // A record comes from one dataset: a task has one on all its train records only when it has one.
    out = lists.map((l) => ({ every: l.length === 1 ? l : [], some: l }));
    datasetsByIndex.set(index, out);
  }
  return out;
}

/** The source values of each task's train records; none on an index without its columns (format 9) or a stand-in without them. */
function sourceValues(index: SelectorIndex): readonly AxisValues[] {
  const ix = index as SelectorIndex & SourceColumns;
  const readable = index.manifest !== undefined && index.columnPage !== undefined && index.isExcluded !== undefined;
  return readable && recordsSources(ix) ? taskSources(ix) : index.tasks.map(() => ({ every: [], some: [] }));
}

/** The axes a selector may name besides the task path. */
export const AXES = {
  ug: { values: (ix) => ix.tasks.map((t) => taskProperty(t.ug)), hint: 'understanding or generation' },
  unseen: { values: (ix) => ix.tasks.map((t) => taskProperty(String(t.unseen))), hint: 'true or false' },
  dataset: { values: taskDatasets, hint: 'a dataset folder name such as 01_CommonVoice (GetCorpusInfo datasets)' },
  source: {
    values: sourceValues,
    hint: "a value of the records' source field, as GetCorpusInfo lists each task's sources",
  },
} as const satisfies Record<string, Axis>;
export type AxisName = keyof typeof AXES;

/** The axis and value of an axis selector, or undefined for a task path. */
export function axisOf(selector: string): { readonly axis: AxisName; readonly value: string } | undefined {
  const colon = selector.indexOf(':');
  if (colon < 0) return undefined;
  const axis = selector.slice(0, colon);
  return Object.hasOwn(AXES, axis) ? { axis: axis as AxisName, value: selector.slice(colon + 1) } : undefined;
}

/** Task ids a mixture selector takes, in id order: by path prefix, or by an axis value. */
export function selectTasks(selector: string, index: SelectorIndex): number[] {
  const ax = axisOf(selector);
  if (!ax) return matchSelector(selector, index.tasks);
  const values = AXES[ax.axis].values(index);
  return index.tasks.filter((t) => values[t.id]?.every.includes(ax.value)).map((t) => t.id);
}

/** Why a mixture selector matches no task, as an actionable message. */
export function whyNoMatch(selector: string, index: SelectorIndex): string {
  const ax = axisOf(selector);
  if (!ax) {
    const prefix = selector.slice(0, Math.max(0, selector.indexOf(':')));
    return selector.includes(':') && !/^(speech|music|audio)\b/.test(selector)
      ? `selector matches no task: "${prefix}" is not an axis (${Object.keys(AXES).join(', ')}) and task paths start with a domain`
      : 'selector matches no task (use domain, domain/major or domain/major/minor, or an axis such as ug:generation; see GetCorpusInfo)';
  }
  const values = AXES[ax.axis].values(index);
  const mixed = index.tasks.filter((t) => values[t.id]?.some.includes(ax.value)).map((t) => t.path);
  if (mixed.length > 0)
    return `selector matches no whole task: ${mixed.slice(0, 3).join(', ')}${mixed.length > 3 ? ', …' : ''} also train on records with another ${ax.axis}, and a selector takes whole tasks`;
  const known = [...new Set(values.flatMap((v) => v.some))].sort();
  const has =
    known.length > 0
      ? `this index has ${known.slice(0, 4).join(', ')}${known.length > 4 ? ', …' : ''}`
      : 'this index records none: an index built before they were recorded needs a rebuild (flanstream index)';
  return `selector matches no task: no task has ${ax.axis} "${ax.value}" (${AXES[ax.axis].hint}; ${has})`;
}
