import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { VocabLayout } from '../tokenize/vocab-layout.js';
import { digest } from '../util/hash.js';
import { writeAudioGroups } from './audio-groups.js';
import { INDEX_FORMAT_VERSION, ROW, ROW_WIDTH, type IndexOptions, type Manifest, type ShardMeta, type TaskEntry } from './format.js';

function percentiles(lengths: number[]): [number, number, number, number] {
  if (lengths.length === 0) return [0, 0, 0, 0];
  lengths.sort((a, b) => a - b);
  const at = (p: number): number => lengths[Math.min(lengths.length - 1, Math.floor(p * lengths.length))] ?? 0;
  return [at(0.5), at(0.9), at(0.99), lengths[lengths.length - 1] ?? 0];
}

function readRows(indexDir: string, shard: ShardMeta): Int32Array {
  const [off, len] = shard.sections.rows;
  const buf = Buffer.alloc(len);
  const fd = openSync(join(indexDir, shard.file), 'r');
  try {
    readSync(fd, buf, 0, len, off);
  } finally {
    closeSync(fd);
  }
  return new Int32Array(buf.buffer, buf.byteOffset, len / 4);
}

/**
 * Joins shard metadata into the manifest: global task ids (sorted by path, so independent of
 * build order), per-task runs of (shard, count) per split, statistics and the fingerprint.
 */
export function compileManifest(indexDir: string, shards: ShardMeta[], vocab: VocabLayout, options: IndexOptions): Manifest {
  shards.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  const paths = [...new Set(shards.flatMap((s) => s.tasks.map((t) => t.path)))].sort();
  const id = new Map(paths.map((p, i) => [p, i]));
  type Acc = { entry: Omit<TaskEntry, 'lengthPercentiles'>; lengths: number[]; counts: [number, number, number]; runs: [number, number, number][][] };
  const acc: Acc[] = paths.map((path, i) => ({
    entry: { id: i, path, domain: '', major: '', minor: '', ug: '', unseen: false, counts: [0, 0, 0], textTokens: 0, audioTokens: 0, runs: [] },
    lengths: [],
    counts: [0, 0, 0],
    runs: [[], [], []],
  }));
  const rowsOf = (s: number): Int32Array => readRows(indexDir, shards[s]!);
  shards.forEach((shard, s) => {
    const rows = rowsOf(s);
    shard.tasks.forEach((t, local) => {
      const a = acc[id.get(t.path) ?? -1];
      if (!a) return;
      const e = a.entry as { -readonly [K in keyof TaskEntry]: TaskEntry[K] };
      Object.assign(e, { domain: t.domain, major: t.major, minor: t.minor, ug: t.ug });
      e.unseen ||= t.unseen;
      e.textTokens += t.textTokens;
      e.audioTokens += t.audioTokens;
      t.counts.forEach((c, split) => {
        a.counts[split] = (a.counts[split] ?? 0) + c;
        if (c > 0) a.runs[split]!.push([s, local, c]);
      });
    });
    for (let r = 0; r < shard.records; r++) {
      const o = r * ROW_WIDTH;
      const task = shard.tasks[rows[o + ROW.TASK] ?? 0];
      const a = task && acc[id.get(task.path) ?? -1];
      a?.lengths.push((rows[o + ROW.INSTR_LEN] ?? 0) + (rows[o + ROW.INPUT_LEN] ?? 0) + (rows[o + ROW.OUTPUT_LEN] ?? 0));
    }
  });
  const tasks: TaskEntry[] = acc.map((a) => ({ ...a.entry, counts: a.counts, runs: a.runs, lengthPercentiles: percentiles(a.lengths) }));
  const quarantine = shards.flatMap((s) => s.quarantine);
  const byReason: Record<string, number> = {};
  for (const q of quarantine) byReason[q.reason] = (byReason[q.reason] ?? 0) + 1;
  const fingerprint = digest(
    String(INDEX_FORMAT_VERSION),
    JSON.stringify(vocab),
    JSON.stringify(options),
    ...shards.map((s) => `${s.source}\u0000${s.key}\u0000${s.checksums.rows}\u0000${s.checksums.blocks.join(',')}`),
  );
  return {
    formatVersion: INDEX_FORMAT_VERSION,
    fingerprint,
    options,
    vocab,
    tasks,
    shards,
    records: shards.reduce((n, s) => n + s.records, 0),
    quarantined: quarantine.length,
    quarantineByReason: byReason,
    audioGroups: writeAudioGroups(indexDir, shards, rowsOf),
  };
}
