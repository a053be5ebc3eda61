/**
 * Planning the sample corpus before any text is written: how many records each task gets, how
 * they split into train/dev/test, and which clip of its dataset every record uses. Clips are shared
 * across the tasks of a dataset (the same recording asked different questions), as in Audio-FLAN.
 */
import { SAMPLE_DATASETS, type SampleDataset } from './sample-datasets.js';
import type { Rng } from './sample-rng.js';
import type { TaskTemplate } from './sample-task-kit.js';
import { AUDIO_FLAN_TASKS, DOMAINS, type Domain } from './task-catalog.js';

/** Every task gets at least this many records … */
export const MIN_RECORDS_PER_TASK = 12;
/** … of which at least this many dev and this many test. */
export const MIN_EVAL_RECORDS = 2;
/**
 * How far each task's window of clips reaches beyond its own share of the dataset's clips
 * (1.4: about 40 % of a multi-task dataset's clips are also used by a neighbouring task).
 */
const OVERLAP = 1.5;

/**
 * Average number of records per clip for a corpus of `n` records: the audio footprint (one .npy
 * file per clip) grows like √n, not n, so large sample corpora stay quick to write and small on
 * disk. Real Audio-FLAN reuses clips heavily too (108M instances from 52 datasets).
 */
export function clipReuse(n: number): number {
  return Math.max(1.5, Math.sqrt(n / 5000));
}

/** Split `total` into integers proportional to `weights` (largest remainder, ties to the lower index). */
export function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) {
    const i = order[k]?.[1] ?? 0;
    out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}

/**
 * Records per catalog task for a target of `n` records: domains get their paper share of `n`, and
 * inside a domain tasks get their share of the domain, except that no task gets fewer than
 * MIN_RECORDS_PER_TASK (the floor is paid for by the domain's larger tasks, so domain proportions
 * hold). When `n` is too small for the floors the total exceeds `n`.
 */
export function recordCounts(n: number): number[] {
  const byDomain = new Map<Domain, number[]>();
  AUDIO_FLAN_TASKS.forEach((t, i) => byDomain.set(t.domain, [...(byDomain.get(t.domain) ?? []), i]));
  const domainSize = DOMAINS.map((d) =>
    (byDomain.get(d) ?? []).reduce((s, i) => s + (AUDIO_FLAN_TASKS[i]?.instances ?? 0), 0),
  );
  const quotas = apportion(n, domainSize);
  const counts = new Array<number>(AUDIO_FLAN_TASKS.length).fill(MIN_RECORDS_PER_TASK);
  DOMAINS.forEach((d, di) => {
    const idx = byDomain.get(d) ?? [];
    const quota = quotas[di] ?? 0;
    const floored = new Set<number>();
    for (;;) {
      const free = idx.filter((i) => !floored.has(i));
      const budget = quota - MIN_RECORDS_PER_TASK * floored.size;
      const w = free.reduce((s, i) => s + (AUDIO_FLAN_TASKS[i]?.instances ?? 0), 0);
      const low = free.filter((i) => (budget * (AUDIO_FLAN_TASKS[i]?.instances ?? 0)) / w < MIN_RECORDS_PER_TASK);
      if (free.length === 0 || low.length === 0) {
        const shares = apportion(
          Math.max(0, budget),
          free.map((i) => AUDIO_FLAN_TASKS[i]?.instances ?? 0),
        );
        free.forEach((i, k) => (counts[i] = shares[k] ?? 0));
        return;
      }
      for (const i of low) floored.add(i);
    }
  });
  return counts;
}

export interface SplitCounts {
  readonly train: number;
  readonly dev: number;
  readonly test: number;
}

/** Roughly 90/5/5, with at least MIN_EVAL_RECORDS dev and test records. */
export function splitCounts(total: number): SplitCounts {
  const dev = Math.max(MIN_EVAL_RECORDS, Math.round(total * 0.05));
  const test = Math.max(MIN_EVAL_RECORDS, Math.round(total * 0.05));
  return { train: total - dev - test, dev, test };
}

export const SPLITS = ['train', 'dev', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface TaskRecordsPlan {
  /** Per record: index into SPLITS. */
  readonly split: Uint8Array;
  /** Per record: the primary clip (an index into the dataset's clips). */
  readonly primary: Int32Array;
  /** One array per extra slot of the task's template: the clip of each record. */
  readonly extras: readonly Int32Array[];
}

export interface DatasetPlan {
  readonly ds: SampleDataset;
  /** Catalog indices of the dataset's tasks. */
  readonly tasks: readonly number[];
  /** Number of clips (clip indices 0 … clips-1); every clip is referenced by some record. */
  readonly clips: number;
  readonly records: ReadonlyMap<number, TaskRecordsPlan>;
  /** Clips referenced by two or more tasks. */
  readonly sharedClips: number;
}

/**
 * Clips for one split of one dataset. The split's K clips sit on a circle; each task owns an arc
 * proportional to its record count and reads clips from a window OVERLAP times as long, cycling
 * through it (clip reuse within a task) and spilling into the next tasks' arcs (clips shared by
 * 2–4 tasks: the same recording, a different question). Clips never cross splits, so no test
 * audio is ever seen in training.
 */
function assignSplit(counts: readonly number[], reuse: number, rng: Rng): { lists: Int32Array[]; clips: number } {
  const total = counts.reduce((a, b) => a + b, 0);
  const lists = counts.map((c) => new Int32Array(c));
  if (total === 0) return { lists, clips: 0 };
  const k = Math.max(Math.min(total, 2), Math.ceil(total / reuse));
  const order = rng.shuffle(counts.map((_, i) => i));
  let offset = 0;
  for (const t of order) {
    const c = counts[t] ?? 0;
    if (c === 0) continue;
    const base = (k * c) / total;
    const from = Math.floor(offset);
    const cover = Math.ceil(offset + base - 1e-9) - from;
    const w = Math.max(1, Math.min(c, k, Math.max(Math.round(OVERLAP * base), cover)));
    const list = lists[t] as Int32Array;
    for (let j = 0; j < c; j++) list[j] = (from + (j % w)) % k;
    offset += base;
  }
  return { lists, clips: k };
}

/** Assign splits and clips to every record, dataset by dataset. */
export function planDatasets(
  counts: readonly number[],
  templates: readonly TaskTemplate[],
  reuse: number,
  rng: Rng,
): DatasetPlan[] {
  return SAMPLE_DATASETS.map((ds) => {
    const tasks = AUDIO_FLAN_TASKS.flatMap((t, i) => (t.dataset === ds.folder ? [i] : []));
    const splits = tasks.map((t) => splitCounts(counts[t] ?? 0));
    const perSplit = SPLITS.map((name) =>
      assignSplit(
        splits.map((s) => s[name]),
        reuse,
        rng,
      ),
    );
    // Lay the splits' primary clips out one after the other, then the fresh (target) clips.
    let next = 0;
    const starts = perSplit.map((p) => {
      const at = next;
      next += p.clips;
      return at;
    });
    const records = new Map<number, TaskRecordsPlan>();
    tasks.forEach((t, k) => {
      const slots = templates[t]?.extras ?? [];
      const split: number[] = [];
      const primary: number[] = [];
      const extras: number[][] = slots.map(() => []);
      SPLITS.forEach((_, si) => {
        const list = perSplit[si]?.lists[k] ?? new Int32Array(0);
        const lo = starts[si] ?? 0;
        const size = perSplit[si]?.clips ?? 0;
        const fresh = slots.map((slot) => {
          if (slot !== 'fresh' || list.length === 0) return 0;
          const at = next;
          next += Math.max(1, Math.ceil(list.length / reuse));
          return at;
        });
        list.forEach((clip, j) => {
          split.push(si);
          primary.push(lo + clip);
          slots.forEach((slot, x) => {
            if (slot === 'fresh') {
              extras[x]?.push((fresh[x] ?? 0) + (j % Math.max(1, Math.ceil(list.length / reuse))));
            } else {
              const pick = lo + rng.int(size);
              extras[x]?.push(pick === lo + clip && size > 1 ? lo + ((clip + 1) % size) : pick);
            }
          });
        });
      });
      // One shuffled record order for the task (dev records interleave with train in train_dev shards).
      const perm = rng.shuffle(primary.map((_, i) => i));
      records.set(t, {
        split: Uint8Array.from(perm, (i) => split[i] ?? 0),
        primary: Int32Array.from(perm, (i) => primary[i] ?? 0),
        extras: extras.map((e) => Int32Array.from(perm, (i) => e[i] ?? 0)),
      });
    });
    return renumber(ds, tasks, records, next);
  });
}

/** Drop clips no record references (possible for tiny splits), count clips used by ≥ 2 tasks. */
function renumber(
  ds: SampleDataset,
  tasks: readonly number[],
  records: Map<number, TaskRecordsPlan>,
  n: number,
): DatasetPlan {
  const users = new Uint8Array(n);
  const last = new Int32Array(n).fill(-1);
  for (const t of tasks) {
    const r = records.get(t);
    if (!r) continue;
    for (const arr of [r.primary, ...r.extras]) {
      for (const clip of arr) {
        if (last[clip] !== t) {
          last[clip] = t;
          users[clip] = Math.min(255, (users[clip] ?? 0) + 1);
        }
      }
    }
  }
  const map = new Int32Array(n);
  let clips = 0;
  let sharedClips = 0;
  for (let i = 0; i < n; i++) {
    const u = users[i] ?? 0;
    map[i] = u > 0 ? clips++ : -1;
    if (u >= 2) sharedClips++;
  }
  for (const r of records.values()) {
    for (const arr of [r.primary, ...r.extras]) for (let j = 0; j < arr.length; j++) arr[j] = map[arr[j] ?? 0] ?? 0;
  }
  return { ds, tasks, clips, records, sharedClips };
}
