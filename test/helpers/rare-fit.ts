import { SegmentLayout } from '../../src/pack/segment-layout.js';
import type { CorpusCatalog } from '../../src/stream/corpus-catalog.js';

/**
 * A rare-fit request on an index: the largest train task, at the seq_len of its second-shortest
 * record (packing none, overlong drop), so only a few of its records fit (for the rare-fit bench
 * and the soak).
 */
export function rareFit(catalog: CorpusCatalog): { task: string; records: number; fits: number; seqLen: number } {
  const table = catalog.table(0);
  const task = [...catalog.tasks].filter((t) => !t.unseen).sort((a, b) => table.size(b.id) - table.size(a.id))[0]!;
  const layout = new SegmentLayout(table, catalog.template);
  const n = table.size(task.id);
  const lengths = Float64Array.from(
    { length: n },
    (_, i) => layout.fit(table.locate(task.id, i), Number.MAX_SAFE_INTEGER, 'drop')!.segment.length,
  ).sort();
  const seqLen = lengths[Math.min(1, n - 1)]!;
  return { task: task.path, records: n, fits: lengths.filter((l) => l <= seqLen).length, seqLen };
}
