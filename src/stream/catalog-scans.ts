import { COLUMN_ROWS_PER_PAGE } from '../index/format.js';
import type { SplitIndex } from '../index/index-reader.js';
import type { RecordExclusion, RecordFilter } from '../filter/record-filter.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { resident, sectionPages } from '../splits/scan-reads.js';
import { minKey } from '../tokenize/audio-layouts/registry.js';
import type { CatalogSteps } from './catalog-cache.js';
import type { ExampleTable } from '../index/example-table.js';
import type { IndexReader } from '../index/index-reader.js';
import type { TaskEntry } from '../index/format.js';
import type { Contamination } from '../splits/contamination.js';
import type { ChatTemplate } from '../tokenize/chat-template.js';
import type { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import type { Servability } from './servable.js';
import type { StreamSpec } from './stream-spec.js';

/**
 * The scans of the whole index the catalog makes when a stream opens or corpus info asks, as
 * sliced scans (util/steps.ts): train sizes under a held-out set and fit, and what a filter keeps.
 * Each names the pages it reads before reading them (scan-reads.ts), so run by the catalog's
 * `scan` nothing is read on the event loop.
 */

/** What a spec's content depends on for which records fit. */
export type Fit = Pick<StreamSpec, 'seqLen' | 'overlong' | 'audio' | 'filter'>;

/** What these scans read of the catalog (corpus-catalog.ts). */
export interface ScannedCatalog {
  readonly reader: IndexReader;
  readonly template: ChatTemplate;
  readonly tasks: readonly TaskEntry[];
  table(split: 0): ExampleTable;
  filter(text: string | undefined): RecordFilter | undefined;
  audioView(spec: Pick<StreamSpec, 'audio'>): AudioView;
  guardSteps(heldout: ResolvedHeldout): CatalogSteps<Contamination | undefined>;
  servabilitySteps(heldout: ResolvedHeldout, fit: Fit): CatalogSteps<Servability>;
}

/** A guard and a filter as one exclusion (undefined: neither). */
export function join(
  guard: RecordExclusion | undefined,
  filter: RecordExclusion | undefined,
): RecordExclusion | undefined {
  if (!guard || !filter) return guard ?? filter;
  return { excluded: (shard, row) => filter.excluded(shard, row) || guard.excluded(shard, row) };
}

/** The columns pages of a shard, as one need (what a filter classifies the shard from). */
function columns(catalog: ScannedCatalog, shard: number): CatalogSteps<void> {
  return sectionPages(shard, 'columns', Math.ceil(catalog.reader.shard(shard).records / COLUMN_ROWS_PER_PAGE));
}

/**
 * Train records per task a stream of this held-out set and fit can serve (see
 * CorpusCatalog.resolveMixture): held-out tasks, tasks none of whose records fit and records a
 * guard or the filter removes count zero.
 */
export function* countTrain(
  catalog: ScannedCatalog,
  heldout: ResolvedHeldout,
  fit: Fit | undefined,
): CatalogSteps<Float64Array> {
  const { reader, template } = catalog;
  const train = catalog.table(0);
  const guard = yield* catalog.guardSteps(heldout);
  const filter = catalog.filter(fit?.filter);
  const exclusion = join(guard, filter);
  const servable = fit ? yield* catalog.servabilitySteps(heldout, fit) : undefined;
  // The template around a record (without the optional input separator): a lower bound.
  const overhead = template.system.length + template.turnLength(0, 0, 0);
  const sizes = new Float64Array(reader.tasks.length);
  // Under an audio layout the task's shortest record is the layout's (precomputed per k).
  const view = fit?.audio ? catalog.audioView(fit) : undefined;
  const layoutKey = view && !view.identity ? minKey(view.layout.name, view.k) : undefined;
  for (const t of reader.tasks) {
    if (heldout.tasks.has(t.id)) continue;
    const [minLength, minCore] = (layoutKey && t.audioMins?.[layoutKey]) || [t.minLength, t.minCoreLength];
    const shortest = fit?.overlong === 'truncate' ? minCore : minLength;
    if (fit && shortest + overhead > fit.seqLen) continue;
    // What the exclusion reads of the task's shards, made ready before it is asked.
    for (const [shard] of t.runs[0] ?? []) {
      if (guard && !guard.classified(shard)) yield* guard.classifyShard(shard);
      if (filter) yield* columns(catalog, shard);
    }
    // The bound above only rules tasks out; whether one of its records really fits is read from
    // the index, so a task left in the mixture can always be served.
    if (servable && !(yield* servable.hasSteps(t.id))) continue;
    let n = train.size(t.id);
    if (exclusion)
      for (const [shard, local] of t.runs[0] ?? []) {
        n -= yield* resident(() => {
          let out = 0;
          for (const row of reader.list(shard, local, 0)) if (exclusion.excluded(shard, row)) out++;
          return out;
        });
        yield;
      }
    sizes[t.id] = n;
  }
  return sizes;
}

/** Records of each task holding each split that the filter keeps ([task][split]), a task between slice boundaries. */
export function* filterCounts(catalog: ScannedCatalog, filter: RecordFilter): CatalogSteps<number[][]> {
  const out: number[][] = [];
  for (const t of catalog.tasks) {
    const shards = new Set(t.runs.flatMap((runs) => runs.map(([s]) => s)));
    for (const s of shards) yield* columns(catalog, s);
    out.push(yield* resident(() => ([0, 1, 2] as SplitIndex[]).map((s) => filter.count(t.id, s))));
    yield;
  }
  return out;
}

/** Train records of tasks not held out that the filter keeps. */
export function* trainKept(
  catalog: ScannedCatalog,
  filter: RecordFilter,
  held: ReadonlySet<number>,
): CatalogSteps<number> {
  let n = 0;
  for (const t of catalog.tasks) {
    if (held.has(t.id)) continue;
    for (const [shard] of t.runs[0] ?? []) yield* columns(catalog, shard);
    n += yield* resident(() => filter.count(t.id, 0));
    yield;
  }
  return n;
}
