import { InvalidArgumentError } from '../errors.js';
import type { RecordFilter } from '../filter/record-filter.js';
import { AXES } from '../mix/selectors.js';
import { taskSourcesAsync, taskSourcesReady } from '../mix/source-axis.js';
import type { GuardRemoval } from '../splits/contamination.js';
import type { CorpusCatalog } from '../stream/corpus-catalog.js';
import { specChoices } from '../stream/spec-choices.js';
import type { ScanOptions } from '../stream/catalog-cache.js';
import { filterCounts as countKept } from '../stream/catalog-scans.js';

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Whether corpusInfo can answer without reading the index (the task sources are known or need no scan). */
export const sourcesKnown = (catalog: CorpusCatalog): boolean => taskSourcesReady(catalog.reader);

/**
 * GetCorpusInfo's answer with `contamination` or a filter's dry run, or before the task sources
 * are known: each available guarded set's report is a scan of every train record, made once per
 * set (kept with its guard) and shared by concurrent calls, a dry run counts task by task, and the
 * sources scan the shards with several source lists; all between event-loop turns, the first two
 * as sliced scans that read no page on the spot (stream/catalog-cache.ts), so streams and health
 * go on while they run. `pause` (tests): given a turn at every slice boundary instead.
 */
export async function corpusInfoWithContamination(
  catalog: CorpusCatalog,
  pause?: () => Promise<void>,
  contamination = true,
  filter?: RecordFilter,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  // The task sources first: a shard holding records of several source lists is scanned once, between turns.
  await taskSourcesAsync(catalog.reader, pause ?? yieldTurn);
  const opts: ScanOptions = pause ? { pause, sliceMs: 0, signal } : { signal };
  const reports = new Map<string, readonly GuardRemoval[]>();
  if (contamination) {
    for (const { resolved } of catalog.named.heldoutSets()) {
      const guard = resolved && (await catalog.scan(catalog.guardSteps(resolved), { signal }));
      if (guard) reports.set(resolved.fingerprint, await guard.reportAsync((g) => catalog.scan(g, opts)));
    }
  }
  const info = corpusInfo(catalog, reports);
  return filter ? { ...info, filter: await filterCounts(catalog, filter, pause, signal) } : info;
}

/**
 * A filter's dry run (GetCorpusInfoRequest.filter): per task and split, the records it keeps (the
 * index's records, duplicates left out, before any held-out set), a task between slice boundaries.
 */
export async function filterCounts(
  catalog: CorpusCatalog,
  filter: RecordFilter,
  pause?: () => Promise<void>,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const counts = await catalog.scan(countKept(catalog, filter), pause ? { pause, sliceMs: 0, signal } : { signal });
  const totals = [0, 0, 0];
  const tasks = catalog.tasks.map((t, k) => {
    const c = counts[k]!;
    c.forEach((n, s) => (totals[s]! += n));
    return { index: t.id, path: t.path, trainRecords: c[0], devRecords: c[1], testRecords: c[2] };
  });
  if (totals.every((n) => n === 0))
    throw new InvalidArgumentError('filter', `${filter.text} keeps no record of this index`);
  return { filter: filter.text, tasks, trainRecords: totals[0], devRecords: totals[1], testRecords: totals[2] };
}

/**
 * GetCorpusInfo's answer (proto CorpusInfo, camelCase). With `reports` (per held-out set
 * fingerprint, see corpusInfoWithContamination), each available guarded set also lists what its
 * guards remove.
 */
export function corpusInfo(
  catalog: CorpusCatalog,
  reports?: ReadonlyMap<string, readonly GuardRemoval[]>,
): Record<string, unknown> {
  const { tasks, vocab: v, availability } = catalog;
  const sources = AXES.source.values(catalog.reader);
  const heldoutSets = catalog.named.heldoutSets().map(({ name, spec, resolved: r, missing }) => ({
    name,
    fingerprint: r?.fingerprint ?? '',
    selectors: spec.selectors ?? [],
    datasets: spec.datasets ?? [],
    unseenFlag: spec.unseenFlag ?? false,
    excludeSharedAudio: spec.excludeSharedAudio ?? false,
    excludeOverlappingText: spec.excludeOverlappingText ?? 0,
    tasks: r ? [...r.tasks].sort((a, b) => a - b).map((t) => tasks[t]?.path ?? '') : [],
    available: !missing,
    missing: missing ?? [],
    contamination: r
      ? (reports?.get(r.fingerprint) ?? []).map((g) => ({
          ...g,
          examples: g.examples.map(([train, heldout]) => ({ train, heldout })),
        }))
      : [],
  }));
  return {
    choices: specChoices(),
    indexFingerprint: catalog.fingerprint,
    records: catalog.records,
    tasks: tasks.map((t) => ({
      index: t.id,
      path: t.path,
      domain: t.domain,
      major: t.major,
      minor: t.minor,
      ug: t.ug,
      trainRecords: t.counts[0],
      devRecords: t.counts[1],
      testRecords: t.counts[2],
      textTokens: t.textTokens,
      audioTokens: t.audioTokens,
      unseen: t.unseen,
      sources: sources[t.id]?.every ?? [],
      partialSources: (sources[t.id]?.some ?? []).filter((s) => !sources[t.id]?.every.includes(s)),
    })),
    vocab: {
      tokenizer: v.tokenizer,
      tokenizerFingerprint: v.tokenizerFingerprint,
      textVocabSize: v.textVocabSize,
      padId: v.special.pad,
      soaId: v.special.soa,
      eoaId: v.special.eoa,
      imStartId: v.special.imStart,
      imEndId: v.special.imEnd,
      eosId: v.special.eos,
      audioOffset: v.audioOffset,
      codebooks: v.codebooks,
      codebookSize: v.codebookSize,
      totalSize: v.totalSize,
      audioPadId: v.audioPadId,
      frameRate: v.frameRate,
      codec: v.codec,
    },
    heldoutSets,
    defaultHeldout: catalog.settings.defaultHeldout,
    mixtures: catalog.named.availableMixtures(),
    unavailableMixtures: [...availability.mixtures].map(([name, missing]) => ({ name, missing })),
    domains: [...catalog.domains()],
    quarantined: catalog.quarantine.total,
    datasets: [...catalog.datasets.values()].map((d) => ({
      name: d.name,
      tasks: [...d.tasks].map(([task, c]) => ({ task, trainRecords: c[0], devRecords: c[1], testRecords: c[2] })),
    })),
  };
}
