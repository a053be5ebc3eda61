import { beforeAll, describe, expect, inject, it } from 'vitest';
import { TaskWalker } from '../../src/mix/task-walker.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { chatml, loadChatml, singleLength, type Chatml } from '../helpers/chatml.js';
import { IndexFacts, type RecordFacts } from '../helpers/index-facts.js';
import { openCore, segments, take, trainSpec } from '../helpers/core-streams.js';

const L = 1024;
const SEED = 4;

let core: DataServiceCore;
let facts: IndexFacts;
let tpl: Chatml;
const run: Record<'drop' | 'truncate', WireBatch[]> = { drop: [], truncate: [] };

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
  tpl = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer);
  // Packing none: rows are the draws in order, so per-task counts can be replayed exactly (in the global order).
  for (const overlong of ['drop', 'truncate'] as const) {
    run[overlong] = take(
      core.open({
        spec: trainSpec({ packing: 'none', batchSize: 32, seqLen: L, overlong, seed: SEED, shuffle: 'global' }),
      }),
      40,
    ).batches;
  }
});

/** Served records per task, in serving order. */
function servedByTask(batches: readonly WireBatch[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const b of batches) b.uuids.forEach((u, k) => out.set(b.turnTask[k]!, [...(out.get(b.turnTask[k]!) ?? []), u]));
  return out;
}

/**
 * Replays task t's permutation walk until `served` records were usable; unusable records met on
 * the way are the ones the stream must have dropped (the sampler redraws the same task at once).
 */
function replayDrops(t: number, served: readonly string[], unusable: (r: RecordFacts) => boolean): number {
  const list = facts.splitList(t);
  const sizes = core.catalog.reader.tasks.map((x) => (x.id === t ? list.length : 0));
  const walker = new TaskWalker(sizes, SEED);
  let dropped = 0;
  for (const uuid of served) {
    for (;;) {
      const r = facts.get(list[walker.next(t)]!);
      if (!unusable(r)) {
        expect(r.uuid).toBe(uuid);
        break;
      }
      dropped++;
    }
  }
  return dropped;
}

/** The input prefix truncation must keep: up to the end of the first input clip (0 without clips). */
function firstClipEnd(r: RecordFacts): number {
  const il = r.instr.length;
  const s = r.spans.find((x) => x.start - il >= 0 && x.start - il < r.input.length);
  return s ? s.start - il + s.length : 0;
}

/** Input tokens a truncated record can keep: a prefix that ends outside every audio span. */
function expectCleanCut(r: RecordFacts, kept: number): void {
  const il = r.instr.length;
  for (const s of r.spans) {
    const [a, b] = [s.start - il, s.start - il + s.length];
    if (a >= 0 && a < r.input.length)
      expect(kept <= a || kept >= b, `cut at ${kept} inside audio [${a}, ${b})`).toBe(true);
  }
}

describe('over-long examples', () => {
  it('drop: never served, and counted per task exactly as the permutation walk meets them', () => {
    const last = run.drop[run.drop.length - 1]!;
    const overlong = (r: RecordFacts): boolean => singleLength(tpl, r) > L;
    const drops = core.catalog.reader.tasks.map(() => 0);
    for (const [t, served] of servedByTask(run.drop)) drops[t] = replayDrops(t, served, overlong);
    expect(last.stats.taskDropped).toEqual(drops);
    expect(last.stats.dropped).toBe(drops.reduce((a, b) => a + b, 0));
    expect(last.stats.dropped).toBeGreaterThan(50);
    expect(last.stats.taskTruncated.every((n) => n === 0)).toBe(true);
    for (const b of run.drop)
      for (const seg of segments(b))
        expect(Array.from(seg.tokens)).toEqual(chatml(tpl, [facts.get(seg.uuids[0]!)]).tokens);
  });

  it('truncate: input cut at a piece boundary (never inside an audio span), answer whole and supervised, counted per task', () => {
    const last = run.truncate[run.truncate.length - 1]!;
    const truncated = core.catalog.reader.tasks.map(() => 0);
    for (const b of run.truncate) {
      for (const seg of segments(b)) {
        const r = facts.get(seg.uuids[0]!);
        expect(seg.length).toBeLessThanOrEqual(L);
        if (singleLength(tpl, r) <= L) {
          expect(Array.from(seg.tokens)).toEqual(chatml(tpl, [r]).tokens);
          continue;
        }
        truncated[r.task]!++;
        // What is left of the input is a prefix of it; everything else is whole.
        const fixed = singleLength(tpl, r) - r.input.length - (r.input.length > 0 ? tpl.nl.length : 0);
        const kept = seg.length - fixed - (seg.length > fixed ? tpl.nl.length : 0);
        expect(kept).toBeGreaterThanOrEqual(0);
        expect(kept).toBeLessThan(r.input.length);
        const want = chatml(tpl, [r], [r.input.subarray(0, kept)]);
        expect(Array.from(seg.tokens)).toEqual(want.tokens);
        expect(seg.loss).toEqual(want.loss);
        expectCleanCut(r, kept);
        expect(kept, `${r.uuid}: a cut never removes every input clip`).toBeGreaterThanOrEqual(firstClipEnd(r));
        // As much input as fits: a text cut fills the row; otherwise the next piece is a clip that does not fit.
        if (seg.length < L) {
          const il = r.instr.length;
          const next = r.spans.find((s) => s.start - il === kept);
          expect(next, `${r.uuid}: stopped at ${kept} with room left but no clip next`).toBeDefined();
          expect(seg.length + next!.length).toBeGreaterThan(L);
        }
      }
    }
    expect(last.stats.taskTruncated).toEqual(truncated);
    expect(last.stats.truncated).toBeGreaterThan(0);
  });

  it('truncate: drops only what cannot fit even cut right after its first input clip, counted per task', () => {
    const last = run.truncate[run.truncate.length - 1]!;
    const hopeless = (r: RecordFacts): boolean => singleLength(tpl, r) - r.input.length + firstClipEnd(r) > L;
    const drops = core.catalog.reader.tasks.map(() => 0);
    for (const [t, served] of servedByTask(run.truncate)) drops[t] = replayDrops(t, served, hopeless);
    expect(last.stats.taskDropped).toEqual(drops);
    expect(last.stats.dropped).toBeLessThan(run.drop[run.drop.length - 1]!.stats.dropped);
  });
});
