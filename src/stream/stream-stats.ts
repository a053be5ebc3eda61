import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
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
  return { examples: z(), textTokens: z(), audioTokens: z(), audioFrames: z(), dropped: z(), truncated: z(), padding: 0 };
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
