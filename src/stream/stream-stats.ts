import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { WireStats } from './wire-types.js';

/** Running totals of the global stream (all ranks), carried in the resume token. */
export interface StreamStats {
  examples: number[];
  textTokens: number[];
  audioTokens: number[];
  dropped: number[];
  truncated: number[];
  padding: number;
}

export function emptyStats(tasks: number): StreamStats {
  const z = (): number[] => Array.from({ length: tasks }, () => 0);
  return { examples: z(), textTokens: z(), audioTokens: z(), dropped: z(), truncated: z(), padding: 0 };
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
    }
    // Template tokens are text; a segment's text tokens go to its first turn's task.
    const first = seg.turns[0]?.loc.task ?? 0;
    stats.textTokens[first] = (stats.textTokens[first] ?? 0) + seg.length - audio;
  }
  stats.padding += seqLen - used;
}

/** Per domain: the target proportion and the realized share of examples served so far. */
export function domainProportions(stats: WireStats): { target: number[]; realized: number[] } {
  const total = stats.domainExamples.reduce((a, c) => a + c, 0);
  return { target: stats.domainTarget, realized: stats.domainExamples.map((n) => (total > 0 ? n / total : 0)) };
}
