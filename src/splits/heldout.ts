import { InvalidArgumentError } from '../errors.js';
import type { DatasetEntry } from '../index/datasets.js';
import type { TaskEntry } from '../index/format.js';
import { matchSelector } from '../mix/selectors.js';
import { digest } from '../util/hash.js';

/** Which records of the held-out tasks the heldout split serves: all of them, or their test split. */
export const HELDOUT_SCOPES = ['all', 'test'] as const;
export type HeldoutScope = (typeof HELDOUT_SCOPES)[number];

export interface HeldoutSpec {
  readonly selectors: readonly string[];
  /** Source datasets (`NN_Dataset` folders): every record of them is held out, whatever its task. */
  readonly datasets: readonly string[];
  /** Also hold out every task whose records say `unseen: true`. */
  readonly unseenFlag: boolean;
  /** Drop train examples with a clip of a held-out example: the same audio id or the same codes. */
  readonly excludeSharedAudio: boolean;
  /** N > 0: drop train examples sharing an N-gram of normalized words with a held-out example. */
  readonly excludeOverlappingText: number;
  /** The heldout evaluation split: every record of the held-out tasks, or only their test split. */
  readonly scope: HeldoutScope;
}

export const NO_HELDOUT: HeldoutSpec = Object.freeze({
  selectors: [],
  datasets: [],
  unseenFlag: false,
  excludeSharedAudio: false,
  excludeOverlappingText: 0,
  scope: 'all',
});

/** Longest n-gram exclude_overlapping_text accepts (13 is the GPT-3 / FLAN choice). */
export const MAX_TEXT_NGRAM = 64;

/** The parts of an index a held-out set resolves against. */
export interface HeldoutIndex {
  readonly tasks: readonly TaskEntry[];
  readonly datasets: ReadonlyMap<string, DatasetEntry>;
}

export interface ResolvedHeldout {
  readonly spec: HeldoutSpec;
  readonly name: string;
  /** Held-out task ids (selectors by prefix, i.e. FLAN's cluster rule, plus the unseen flag). */
  readonly tasks: ReadonlySet<number>;
  /** Shards of the held-out datasets: every record in them is held out (one shard = one dataset). */
  readonly shards: ReadonlySet<number>;
  /** Whether the guards (datasets, shared audio, overlapping text) remove anything beyond tasks. */
  readonly guarded: boolean;
  readonly fingerprint: string;
}

/**
 * How clips are compared by exclude_shared_audio; part of the fingerprint, so a resume token made
 * when only audio ids were compared is refused rather than continued under another wall.
 */
const AUDIO_IDENTITY = 'id+codes';

export function resolveHeldout(spec: HeldoutSpec, index: HeldoutIndex, name = '', field = 'heldout'): ResolvedHeldout {
  if (spec.scope !== 'all' && spec.scope !== 'test')
    throw new InvalidArgumentError(`${field}.scope`, `"${String(spec.scope)}" is not all or test`);
  const n = spec.excludeOverlappingText ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > MAX_TEXT_NGRAM) {
    throw new InvalidArgumentError(
      `${field}.exclude_overlapping_text`,
      `must be an integer in [0, ${MAX_TEXT_NGRAM}] (0 = off; 13 is usual), got ${String(n)}`,
    );
  }
  if (!Array.isArray(spec.datasets ?? []))
    throw new InvalidArgumentError(`${field}.datasets`, 'must be a list of dataset folder names');
  const held = new Set<number>();
  for (const sel of spec.selectors) {
    const ids = matchSelector(sel, index.tasks);
    if (ids.length === 0)
      throw new InvalidArgumentError(
        `${field}.selectors`,
        `"${sel}" matches no task (use domain, domain/major or domain/major/minor)`,
      );
    for (const t of ids) held.add(t);
  }
  if (spec.unseenFlag) for (const t of index.tasks) if (t.unseen) held.add(t.id);
  const shards = new Set<number>();
  const datasets = [...new Set(spec.datasets ?? [])].sort();
  for (const d of datasets) {
    const entry = index.datasets.get(d);
    if (!entry) {
      const known = [...index.datasets.keys()];
      throw new InvalidArgumentError(
        `${field}.datasets`,
        `"${d}" is not a dataset of this index (dataset folder names, e.g. ${known.slice(0, 3).join(', ')}${known.length > 3 ? ', …' : ''}; see GetCorpusInfo datasets)`,
      );
    }
    for (const s of entry.shards) shards.add(s);
  }
  const paths = [...held].map((t) => index.tasks[t]?.path ?? '').sort();
  const fingerprint = digest(
    JSON.stringify({
      paths,
      datasets,
      excludeSharedAudio: spec.excludeSharedAudio,
      audioIdentity: AUDIO_IDENTITY,
      excludeOverlappingText: n,
      scope: spec.scope,
    }),
  );
  return { spec, name, tasks: held, shards, guarded: shards.size > 0 || spec.excludeSharedAudio || n > 0, fingerprint };
}
