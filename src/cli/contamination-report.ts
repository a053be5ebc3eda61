import type { IndexReader } from '../index/index-reader.js';
import type { Contamination, GuardRemoval } from '../splits/contamination.js';
import { GUARDS } from '../splits/contamination.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { formatBytes, formatTable } from './format-table.js';

/** Rows of the dataset table: one per dataset and task, with records per split. */
export function datasetRows(reader: IndexReader): (string | number)[][] {
  return [...reader.datasets.values()].flatMap((d) =>
    [...d.tasks].map(([task, c]) => [d.name, task, c[0], c[1], c[2]]),
  );
}

export function formatDatasets(reader: IndexReader): string {
  return formatTable(['dataset', 'task', 'train', 'dev', 'test'], datasetRows(reader));
}

/** A set's guards in words ("datasets 02_A, 05_B; shared audio; 13-gram text"), or "none". */
export function describeGuards(held: ResolvedHeldout): string {
  const s = held.spec;
  const parts = [
    s.datasets.length > 0 ? `datasets ${s.datasets.join(', ')}` : '',
    s.excludeSharedAudio ? 'shared audio (same id or same codes)' : '',
    s.excludeOverlappingText > 0 ? `overlapping text (${s.excludeOverlappingText}-grams)` : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? parts.join('; ') : 'none';
}

/**
 * The contamination report of `inspect --heldout NAME --contamination`: per guard and held-out
 * task (or dataset), how many train records are removed, with example uuid pairs, then totals
 * and what building the guards cost.
 */
export function formatContamination(guard: Contamination, removals: readonly GuardRemoval[]): string {
  const rows = removals.map((r) => [
    r.guard,
    r.heldout,
    r.removed,
    r.examples.map(([t, h]) => (h ? `${t} ~ ${h}` : t)).join(', '),
  ]);
  const total = (g: string): number => removals.filter((r) => r.guard === g).reduce((n, r) => n + r.removed, 0);
  const c = guard.cost;
  return [
    'contamination: train records each guard removes (the first guard that applies counts), by held-out task',
    rows.length > 0
      ? formatTable(['guard', 'held-out task (or dataset)', 'removed', 'examples: train uuid ~ held-out uuid'], rows)
      : '  (no train record is removed)',
    `  totals: ${GUARDS.map((g) => `${g} ${total(g).toLocaleString('en-US')}`).join(', ')}`,
    `  guard cost: ${c.heldoutRecords.toLocaleString('en-US')} held-out records, ${c.heldoutClips.toLocaleString('en-US')} clip identities, ${c.ngrams.toLocaleString('en-US')} n-grams (${formatBytes(c.tableBytes)}), built in ${c.buildMs.toFixed(0)} ms`,
  ].join('\n');
}
