import type { Manifest } from './format.js';

/**
 * The source datasets of an index: the `NN_Dataset` folders of
 * `metadata/<domain>/<ug>/<split>/<NN_Dataset>/jsonl/*.jsonl`. A shard is one JSONL file, so each
 * shard belongs to exactly one dataset and the table is derived from the manifest alone
 * (O(shards)): held-out `datasets` select whole shards, whatever the tasks of their records.
 */
export interface DatasetEntry {
  readonly name: string;
  /** Shard indexes of the dataset, ascending. */
  readonly shards: readonly number[];
  /** Task path → records holding each split (train, dev, test), in task path order. */
  readonly tasks: ReadonlyMap<string, readonly [number, number, number]>;
}

/** The dataset folder of a shard source path ('' when the path is not in the release layout). */
export function datasetOf(source: string): string {
  const parts = source.split('/');
  return parts[0] === 'metadata' && parts.length >= 7 ? (parts[4] ?? '') : '';
}

/** Every dataset of the index by name, sorted by name. */
export function datasetTable(
  manifest: Pick<Manifest, 'shards'>,
  count?: (shard: number, local: number, split: 0 | 1 | 2) => number,
): ReadonlyMap<string, DatasetEntry> {
  const acc = new Map<string, { shards: number[]; tasks: Map<string, [number, number, number]> }>();
  manifest.shards.forEach((shard, i) => {
    const name = datasetOf(shard.source);
    if (name === '') return;
    let d = acc.get(name);
    if (!d) acc.set(name, (d = { shards: [], tasks: new Map() }));
    d.shards.push(i);
    shard.tasks.forEach((t, local) => {
      const c = d.tasks.get(t.path) ?? [0, 0, 0];
      // Net of excluded records when the reader says how many its lists serve.
      t.counts.forEach((n, s) => (c[s] = (c[s] ?? 0) + (count ? count(i, local, s as 0 | 1 | 2) : n)));
      d.tasks.set(t.path, c);
    });
  });
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return new Map(
    [...acc.keys()].sort(byName).map((name) => {
      const d = acc.get(name)!;
      const tasks = new Map([...d.tasks.keys()].sort(byName).map((p) => [p, d.tasks.get(p)!] as const));
      return [name, { name, shards: d.shards, tasks }];
    }),
  );
}
