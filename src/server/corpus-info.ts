import type { CorpusCatalog } from '../stream/corpus-catalog.js';

/**
 * GetCorpusInfo's answer (proto CorpusInfo, camelCase). With `contamination`, each available
 * guarded set also reports what its guards remove (built at first use and cached, like a stream's).
 */
export function corpusInfo(catalog: CorpusCatalog, contamination = false): Record<string, unknown> {
  const { tasks, vocab: v, availability } = catalog;
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
    contamination: contamination && r ? (catalog.guard(r)?.report() ?? []).map((g) => ({ ...g, examples: g.examples.map(([train, heldout]) => ({ train, heldout })) })) : [],
  }));
  return {
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
