import { AUDIO_LAYOUTS, MIN_TABLE_CODEBOOKS, minKey } from '../tokenize/audio-layouts/registry.js';
import type { VocabLayout } from '../tokenize/vocab-layout.js';
import { digest } from '../util/hash.js';
import { writeAudioGroups } from './audio-groups.js';
import { DUP_WIDTH, findDuplicateUuids, type DuplicateQuads } from './duplicate-uuids.js';
import { QUINT, listEntries, writeExclusions } from './exclusions.js';
import { LengthHistogram } from './length-histogram.js';
import { ShardFiles } from './shard-access.js';
import {
  CONTENT_VERSION,
  INDEX_FORMAT_VERSION,
  ROW,
  ROW_WIDTH,
  SPAN,
  SPAN_WIDTH,
  SPLIT_BIT,
  type IndexOptions,
  type Manifest,
  type ShardMeta,
  type TaskEntry,
} from './format.js';
import type { TemplatePieces } from '../tokenize/chat-template.js';

/**
 * A record's shortest train lengths under every audio layout and k (SegmentLayout serves clips
 * re-arranged, so a record that fits `seq_len` flat may not fit delayed): folds the stored spans
 * [from, to) of one record into per-task minimums of [whole record, what truncation keeps]. Runs
 * once per train record for every (layout, k): the keys are made once and a task's minimums are
 * lowered in place, since a fresh pair and key string per record and slot were most of the
 * compile step's allocations.
 */
function audioMinTable(
  q: number,
): (
  into: Map<string, [number, number]>,
  spans: Int32Array,
  from: number,
  to: number,
  instr: number,
  input: number,
  whole: number,
  core: number,
) => void {
  const ks = Array.from({ length: Math.min(q, MIN_TABLE_CODEBOOKS) }, (_, i) => i + 1);
  const slots = AUDIO_LAYOUTS.flatMap((layout) => ks.map((k) => ({ layout, k, key: minKey(layout.name, k) })));
  return (into, spans, from, to, instr, input, whole, core) => {
    for (const { layout, k, key } of slots) {
      let w = whole;
      let c = core;
      // Clips in the kept core: all but the input's clips after its first one.
      let seenInputClip = false;
      for (let o = from * SPAN_WIDTH; o < to * SPAN_WIDTH; o += SPAN_WIDTH) {
        const rel = (spans[o + SPAN.REL_START] ?? 0) - instr;
        const stored = spans[o + SPAN.LENGTH] ?? 0;
        const inInput = rel >= 0 && rel < input;
        const delta = layout.tokens((stored - 2) / q, k) + 2 - stored;
        w += delta;
        if (!inInput || !seenInputClip) c += delta;
        seenInputClip ||= inInput;
      }
      const old = into.get(key);
      if (old === undefined) into.set(key, [w, c]);
      else {
        old[0] = Math.min(old[0], w);
        old[1] = Math.min(old[1], c);
      }
    }
  };
}

/**
 * Joins shard metadata into the manifest: global task ids (sorted by path, so independent of
 * build order), per-task runs of (shard, count) per split, statistics and the fingerprint. Records
 * whose uuid an earlier shard already has are excluded (see exclusions.ts): left out of counts,
 * runs, statistics and audio groups, and returned for the quarantine report.
 */
export function compileIndex(
  indexDir: string,
  shards: ShardMeta[],
  vocab: VocabLayout,
  options: IndexOptions,
  template: TemplatePieces,
  perBucket?: number,
): { manifest: Manifest; duplicates: DuplicateQuads } {
  shards.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  const files = new ShardFiles(indexDir, shards);
  try {
    const duplicates = findDuplicateUuids(files, shards, perBucket);
    return { manifest: compile(files, shards, vocab, options, template, duplicates), duplicates };
  } finally {
    files.close();
  }
}

export function compileManifest(
  indexDir: string,
  shards: ShardMeta[],
  vocab: VocabLayout,
  options: IndexOptions,
  template: TemplatePieces,
): Manifest {
  return compileIndex(indexDir, shards, vocab, options, template).manifest;
}

function compile(
  files: ShardFiles,
  shards: ShardMeta[],
  vocab: VocabLayout,
  options: IndexOptions,
  template: TemplatePieces,
  duplicates: DuplicateQuads,
): Manifest {
  const indexDir = files.dir;
  const paths = [...new Set(shards.flatMap((s) => s.tasks.map((t) => t.path)))].sort();
  const id = new Map(paths.map((p, i) => [p, i]));
  type Acc = {
    entry: Omit<TaskEntry, 'lengthPercentiles' | 'minLength' | 'minCoreLength' | 'audioMins'>;
    lengths: LengthHistogram;
    minTrain: number;
    minCore: number;
    audioMins: Map<string, [number, number]>;
    counts: [number, number, number];
    runs: [number, number, number][][];
  };
  const mins = audioMinTable(vocab.codebooks);
  const acc: Acc[] = paths.map((path, i) => ({
    entry: {
      id: i,
      path,
      domain: '',
      major: '',
      minor: '',
      ug: '',
      unseen: false,
      counts: [0, 0, 0],
      textTokens: 0,
      audioTokens: 0,
      audioFrames: 0,
      runs: [],
    },
    lengths: new LengthHistogram(),
    minTrain: Infinity,
    minCore: Infinity,
    audioMins: new Map(),
    counts: [0, 0, 0],
    runs: [[], [], []],
  }));
  const rowsOf = (s: number): Int32Array => files.ints(s, 'rows');
  // Duplicates by shard (the quads are sorted by shard, row): rows, and list entries to exclude.
  const dropped = new Map<number, Set<number>>();
  for (let i = 0; i < duplicates.length; i += DUP_WIDTH) {
    const s = duplicates[i]!;
    if (!dropped.has(s)) dropped.set(s, new Set());
    dropped.get(s)!.add(duplicates[i + 1]!);
  }
  const excluded: number[] = [];
  shards.forEach((shard, s) => {
    const rows = rowsOf(s);
    const spans = files.ints(s, 'spans');
    const gone = dropped.get(s) ?? new Set<number>();
    const entries = gone.size > 0 ? listEntries(shard, s, rows, files.ints(s, 'lists'), [...gone]) : [];
    // Excluded entries per local task and split, taken from the shard's counts.
    const less = new Map<number, number>();
    for (let i = 0; i < entries.length; i += QUINT) {
      const k = entries[i + 1]! * 3 + entries[i + 2]!;
      less.set(k, (less.get(k) ?? 0) + 1);
      for (let f = 0; f < QUINT; f++) excluded.push(entries[i + f]!);
    }
    // The excluded records' tokens and audio frames per local task, taken from the shard's task totals.
    const minus = new Map<number, [text: number, audio: number, frames: number]>();
    for (const r of gone) {
      const o = r * ROW_WIDTH;
      const audio = rows[o + ROW.AUDIO_TOKENS] ?? 0;
      const total = (rows[o + ROW.INSTR_LEN] ?? 0) + (rows[o + ROW.INPUT_LEN] ?? 0) + (rows[o + ROW.OUTPUT_LEN] ?? 0);
      let frames = 0;
      for (let k = rows[o + ROW.SPAN_START] ?? 0, end = k + (rows[o + ROW.SPAN_COUNT] ?? 0); k < end; k++)
        frames += ((spans[k * SPAN_WIDTH + SPAN.LENGTH] ?? 2) - 2) / vocab.codebooks;
      const m = minus.get(rows[o + ROW.TASK] ?? 0) ?? [0, 0, 0];
      minus.set(rows[o + ROW.TASK] ?? 0, [m[0] + total - audio, m[1] + audio, m[2] + frames]);
    }
    shard.tasks.forEach((t, local) => {
      const a = acc[id.get(t.path) ?? -1];
      if (!a) return;
      const e = a.entry as { -readonly [K in keyof TaskEntry]: TaskEntry[K] };
      Object.assign(e, { domain: t.domain, major: t.major, minor: t.minor, ug: t.ug });
      e.unseen ||= t.unseen;
      const [text, audio, frames] = minus.get(local) ?? [0, 0, 0];
      e.textTokens += t.textTokens - text;
      e.audioTokens += t.audioTokens - audio;
      e.audioFrames += t.audioFrames - frames;
      t.counts.forEach((all, split) => {
        const c = all - (less.get(local * 3 + split) ?? 0);
        a.counts[split] = (a.counts[split] ?? 0) + c;
        if (c > 0) a.runs[split]!.push([s, local, c]);
      });
    });
    for (let r = 0; r < shard.records; r++) {
      if (gone.has(r)) continue;
      const o = r * ROW_WIDTH;
      const task = shard.tasks[rows[o + ROW.TASK] ?? 0];
      const a = task && acc[id.get(task.path) ?? -1];
      if (!a) continue;
      const instr = rows[o + ROW.INSTR_LEN] ?? 0;
      const input = rows[o + ROW.INPUT_LEN] ?? 0;
      // Truncation keeps the input up to the end of its first clip (see SegmentLayout.fit).
      let firstClipEnd = 0;
      const first = rows[o + ROW.SPAN_START] ?? 0;
      const count = rows[o + ROW.SPAN_COUNT] ?? 0;
      for (let k = first; k < first + count; k++) {
        const start = (spans[k * SPAN_WIDTH + SPAN.REL_START] ?? 0) - instr;
        if (start >= 0 && start < input) {
          firstClipEnd = start + (spans[k * SPAN_WIDTH + SPAN.LENGTH] ?? 0);
          break;
        }
      }
      const core = instr + (rows[o + ROW.OUTPUT_LEN] ?? 0);
      a.lengths.add(core + input);
      if ((rows[o + ROW.SPLITS] ?? 0) & SPLIT_BIT.train) {
        a.minTrain = Math.min(a.minTrain, core + input);
        a.minCore = Math.min(a.minCore, core + firstClipEnd);
        mins(a.audioMins, spans, first, first + count, instr, input, core + input, core + firstClipEnd);
      }
    }
  });
  const tasks: TaskEntry[] = acc.map((a) => ({
    ...a.entry,
    counts: a.counts,
    runs: a.runs,
    minLength: a.minTrain,
    minCoreLength: a.minCore,
    lengthPercentiles: a.lengths.percentiles(),
    audioMins: Object.fromEntries([...a.audioMins.entries()].sort(([x], [y]) => (x < y ? -1 : 1))),
  }));
  const dupCount = duplicates.length / DUP_WIDTH;
  const byReason: Record<string, number> = {};
  let quarantined = dupCount;
  if (dupCount > 0) byReason.duplicate_uuid = dupCount;
  for (const s of shards) {
    for (const [reason, n] of Object.entries(s.quarantined)) {
      byReason[reason] = (byReason[reason] ?? 0) + (n ?? 0);
      quarantined += n ?? 0;
    }
  }
  const exclusions = writeExclusions(indexDir, Int32Array.from(excluded), dupCount);
  const fingerprint = digest(
    // What is served, not how it is stored: the content version and the shards' content checksums.
    String(CONTENT_VERSION),
    JSON.stringify(vocab),
    JSON.stringify(options),
    // What is served, not how it was built: the shard key also covers audio mtimes, which a copy
    // of the same corpus does not share, and replicas must agree on the fingerprint.
    ...shards.map((s) => [s.source, JSON.stringify(s.tasks), s.checksums.content].join('\u0000')),
    `duplicates ${exclusions.checksum}`,
  );
  return {
    formatVersion: INDEX_FORMAT_VERSION,
    fingerprint,
    options,
    vocab,
    tasks,
    shards,
    records: shards.reduce((n, s) => n + s.records, 0) - dupCount,
    quarantined,
    quarantineByReason: byReason,
    audioGroups: writeAudioGroups(indexDir, shards, rowsOf, undefined, (s, r) => dropped.get(s)?.has(r) ?? false),
    exclusions,
    template,
  };
}
