/**
 * Metrics of the served index and its caches: index cache hits, misses and read-ahead, held
 * prefetch bytes, the plan cache shared by a job's ranks, quarantined records and the record count.
 */
import client from 'prom-client';
import type { CorpusCatalog } from '../stream/corpus-catalog.js';
import type { PlanCache } from '../stream/plan-cache.js';
import { countedSince } from './counted-since.js';

export function registerCatalogMetrics(
  registry: client.Registry,
  catalog: CorpusCatalog,
  plans: Pick<PlanCache, 'counts' | 'size'>,
): void {
  countedSince(registry, 'flanstream_cache_hits_total', 'Index cache hits', () => catalog.cacheStats.hits);
  countedSince(
    registry,
    'flanstream_cache_misses_total',
    'Index cache misses (positional reads)',
    () => catalog.cacheStats.misses,
  );
  countedSince(
    registry,
    'flanstream_pages_prefetched_total',
    'Index pages read ahead of planned steps (asynchronous reads)',
    () => catalog.cacheStats.prefetched,
  );
  new client.Gauge({
    name: 'flanstream_prefetch_bytes',
    help: 'Bytes of index pages held for planned steps not built yet (bounded by index.prefetch_bytes)',
    registers: [registry],
    collect() {
      this.set(catalog.prefetchHeld);
    },
  });
  countedSince(
    registry,
    'flanstream_plan_cache_hits_total',
    "Train steps a rank stream took from another rank's planning",
    () => plans.counts.hits,
  );
  countedSince(
    registry,
    'flanstream_plan_cache_misses_total',
    'Train steps of multi-rank streams planned by the stream itself',
    () => plans.counts.misses,
  );
  new client.Gauge({
    name: 'flanstream_plan_cache_rows',
    help: 'Planned rows held for the other ranks of their jobs',
    registers: [registry],
    collect() {
      this.set(plans.size.rows);
    },
  });
  const q = new client.Gauge({
    name: 'flanstream_quarantined_records',
    help: 'Records and files quarantined at index time, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const [reason, n] of Object.entries(catalog.quarantine.byReason)) q.labels(reason).set(n);
  new client.Gauge({
    name: 'flanstream_index_records',
    help: 'Records in the served index',
    registers: [registry],
  }).set(catalog.records);
}
