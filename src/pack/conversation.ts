import { groupRange, QUAD } from '../index/audio-groups.js';
import { ROW } from '../index/format.js';
import { hashInts } from '../mix/permutation.js';
import type { ConversationDeps } from './packing.js';
import type { Segment, Turn } from './segment-layout.js';

/**
 * The multi-turn conversation builder (`packing: multiturn`): grows a drawn example into a
 * conversation about its clip. Why its own file: which records may join, and in what order, is
 * the one place multi-turn differs from single-example packing; the window packing around it is
 * best-fit.ts. Stateless between units (the order is a hash of the seed and the head record).
 */
export class ConversationBuilder {
  private readonly deps: ConversationDeps;

  constructor(deps: ConversationDeps) {
    this.deps = deps;
  }

  /**
   * Other train records whose first input clip is the same (from the index's audio groups) join,
   * one per task, in a seeded order, while they fit. Later turns leave the clip out (it was shown
   * in turn 1) and count toward their own task in the sampler, so the mixture stays exact.
   * Held-out, zero-weight and excluded records never join.
   */
  grow(first: Segment): Segment {
    const { layout, seed, seqLen, maxTurns, joinable, excluded, credit } = this.deps;
    const table = layout.table;
    const head = first.turns[0]!;
    const f = table.fields(head.loc);
    const lo = f[ROW.AUDIO_KEY_LO] ?? 0;
    const hi = f[ROW.AUDIO_KEY_HI] ?? 0;
    if (lo === 0 && hi === 0) return first;
    const reader = table.reader;
    const groups = reader.audioGroups();
    const [from, to] = groupRange(groups, lo, hi);
    const candidates: { shard: number; row: number; order: number }[] = [];
    for (let q = from; q < to; q++) {
      const shard = groups[q * QUAD + 2] ?? 0;
      const row = groups[q * QUAD + 3] ?? 0;
      if (shard === head.loc.shard && row === head.loc.row) continue;
      candidates.push({ shard, row, order: hashInts(seed, head.loc.task, head.loc.i, shard, row) });
    }
    candidates.sort((a, b) => a.order - b.order || a.shard - b.shard || a.row - b.row);
    const turns: Turn[] = [head];
    const used = new Set([head.loc.task]);
    let length = first.length;
    for (const c of candidates) {
      if (turns.length >= maxTurns) break;
      const t = reader.taskOf(c.shard, c.row);
      if (used.has(t) || !joinable(t)) continue;
      if (excluded(c.shard, c.row)) continue;
      const i = table.indexOf(t, c.shard, c.row);
      if (i < 0) continue;
      const turn = layout.turn({ task: t, i, shard: c.shard, row: c.row }, true);
      const len = layout.turnLength(turn);
      if (length + len > seqLen) continue;
      turns.push(turn);
      used.add(t);
      length += len;
      credit(t);
    }
    return turns.length === 1 ? first : { turns, length };
  }
}
