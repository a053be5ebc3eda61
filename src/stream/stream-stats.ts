import { DOMAINS } from '../corpus/record-schema.js';
import { checkInt, checkInts, checkObject } from '../mix/state-check.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import { countsSince, type ShareState } from './share-window.js';
import type { WireStats } from './wire-types.js';

/** Running totals of the global stream (all ranks), carried in the resume token. */
export interface StreamStats {
  examples: number[];
  textTokens: number[];
  audioTokens: number[];
  /** Codec frames of the clips served (seconds = frames / the codec's frame rate). */
  audioFrames: number[];
  dropped: number[];
  truncated: number[];
  padding: number;
}

export function emptyStats(tasks: number): StreamStats {
  const z = (): number[] => Array.from({ length: tasks }, () => 0);
  return {
    examples: z(),
    textTokens: z(),
    audioTokens: z(),
    audioFrames: z(),
    dropped: z(),
    truncated: z(),
    padding: 0,
  };
}

const VECTORS = ['examples', 'textTokens', 'audioTokens', 'audioFrames', 'dropped', 'truncated'] as const;

/** A token's `stats` section, checked (one count per task in each vector, and the padding), as a copy of its own. */
export function restoreStats(value: unknown, field: string, tasks: number): StreamStats {
  const s = checkObject(field, value);
  for (const k of VECTORS) checkInts(`${field}.${k}`, s[k], tasks);
  checkInt(`${field}.padding`, s.padding, 0, Number.MAX_SAFE_INTEGER);
  return structuredClone(s as unknown as StreamStats);
}

export function countRow(stats: StreamStats, layout: SegmentLayout, row: readonly Segment[], seqLen: number): void {
  let used = 0;
  for (const seg of row) {
    used += seg.length;
    let audio = 0;
    for (const t of seg.turns) {
      const a = layout.turnAudio(t);
      audio += a;
      stats.examples[t.loc.task] = (stats.examples[t.loc.task] ?? 0) + 1;
      stats.audioTokens[t.loc.task] = (stats.audioTokens[t.loc.task] ?? 0) + a;
      stats.audioFrames[t.loc.task] = (stats.audioFrames[t.loc.task] ?? 0) + layout.turnFrames(t);
    }
    // Template tokens are text; a segment's text tokens go to its first turn's task.
    const first = seg.turns[0]?.loc.task ?? 0;
    stats.textTokens[first] = (stats.textTokens[first] ?? 0) + seg.length - audio;
  }
  stats.padding += seqLen - used;
}

/** Per task of a layout's index: its domain's position in DOMAINS. */
export function taskDomains(layout: SegmentLayout): Int32Array {
  return Int32Array.from(layout.table.reader.tasks.map((t) => DOMAINS.indexOf(t.domain as (typeof DOMAINS)[number])));
}

/** What a train stream adds to its stats: the sampler's target, the share baselines and the epochs per task. */
export interface TrainFigures {
  readonly target: ArrayLike<number>;
  readonly shares: ShareState;
  readonly epochs: readonly number[];
}

/**
 * A batch's stats from the running totals: per task, and rolled up per domain (`domainOf`: each
 * task's domain, see taskDomains). `frameRate`: the codec's frames per second (0: no audio seconds).
 * Everything is copied: the planner keeps counting into its arrays while gRPC may still hold this
 * batch unserialized in its write buffer.
 */
export function wireStats(
  totals: StreamStats,
  domainOf: Int32Array,
  frameRate: number,
  train?: TrainFigures,
): WireStats {
  const target = train ? Array.from(train.target) : totals.examples.map(() => 0);
  const shares = train?.shares;
  const sinceUpdate = shares ? countsSince(totals.examples, shares.atUpdate) : [];
  const recent = shares ? countsSince(totals.examples, shares.atWindowStart) : [];
  const domainExamples = DOMAINS.map(() => 0);
  const domainTarget = DOMAINS.map(() => 0);
  const domainAudioSeconds = frameRate > 0 ? DOMAINS.map(() => 0) : [];
  const domainSinceUpdate = shares ? DOMAINS.map(() => 0) : [];
  const domainRecent = shares ? DOMAINS.map(() => 0) : [];
  totals.examples.forEach((n, t) => {
    const d = domainOf[t] ?? 0;
    domainExamples[d] = (domainExamples[d] ?? 0) + n;
    domainTarget[d] = (domainTarget[d] ?? 0) + (target[t] ?? 0);
    if (frameRate > 0) domainAudioSeconds[d] = (domainAudioSeconds[d] ?? 0) + (totals.audioFrames[t] ?? 0) / frameRate;
    if (shares) {
      domainSinceUpdate[d] = (domainSinceUpdate[d] ?? 0) + (sinceUpdate[t] ?? 0);
      domainRecent[d] = (domainRecent[d] ?? 0) + (recent[t] ?? 0);
    }
  });
  return {
    taskExamples: [...totals.examples],
    taskTextTokens: [...totals.textTokens],
    taskAudioTokens: [...totals.audioTokens],
    taskTarget: target,
    domainExamples,
    domainTarget,
    paddingTokens: totals.padding,
    dropped: totals.dropped.reduce((a, b) => a + b, 0),
    truncated: totals.truncated.reduce((a, b) => a + b, 0),
    taskDropped: [...totals.dropped],
    taskTruncated: [...totals.truncated],
    sinceUpdateStep: shares?.updateStep ?? 0,
    taskExamplesSinceUpdate: sinceUpdate,
    domainExamplesSinceUpdate: domainSinceUpdate,
    windowStartStep: shares?.windowStart ?? 0,
    taskExamplesWindow: recent,
    domainExamplesWindow: domainRecent,
    taskEpochs: train ? [...train.epochs] : [],
    domainAudioSeconds,
  };
}

export interface DomainProportions {
  /** Target proportion per domain. */
  target: number[];
  /** Realized share of examples served so far. */
  realized: number[];
  /** Realized share since the last mixture update took effect (at `sinceUpdateStep`); [] for evaluation streams. */
  sinceUpdate: number[];
  sinceUpdateStep: number;
  /** Realized share over the recent window (from `windowStartStep` to the batch's step); [] for evaluation streams. */
  recent: number[];
  windowStartStep: number;
}

function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, c) => a + c, 0);
  return counts.map((n) => (total > 0 ? n / total : 0));
}

/** Per domain: target proportions and realized shares (overall, since the last update, recent). */
export function domainProportions(stats: WireStats): DomainProportions {
  return {
    target: stats.domainTarget,
    realized: shares(stats.domainExamples),
    sinceUpdate: shares(stats.domainExamplesSinceUpdate ?? []),
    sinceUpdateStep: stats.sinceUpdateStep ?? 0,
    recent: shares(stats.domainExamplesWindow ?? []),
    windowStartStep: stats.windowStartStep ?? 0,
  };
}
