import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { decodeToken } from '../../src/stream/resume-token.js';
import type { TrainState } from '../../src/stream/train-planner.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { loadChatml, singleLength, type Chatml } from '../helpers/chatml.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { openCore, segments, take, trainSpec } from '../helpers/core-streams.js';

let core: DataServiceCore;
let facts: IndexFacts;
let tpl: Chatml;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
  tpl = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer);
});

/** Per row of a batch: the lengths of its segments in order. Checks the layout invariants on the way. */
function rowsOf(b: WireBatch, B: number, L: number): number[][] {
  expect(b.batchSize).toBe(B);
  expect(b.seqLen).toBe(L);
  const rows: number[][] = Array.from({ length: B }, () => []);
  let total = 0;
  for (const seg of segments(b)) {
    const row = rows[seg.row]!;
    // Segments fill a row left to right, back to back, starting at 0, and never cross its end.
    expect(seg.offset).toBe(row.reduce((a, x) => a + x, 0));
    expect(seg.offset + seg.length).toBeLessThanOrEqual(L);
    row.push(seg.length);
    total += seg.length;
    // Each segment is whole ChatML: it opens a turn and ends with <|im_end|>\n.
    expect(seg.tokens[0]).toBe(tpl.imStart);
    expect(seg.tokens[seg.length - 2]).toBe(tpl.imEnd);
    let prev = 0;
    for (const [s, e] of seg.loss) {
      expect(s).toBeGreaterThanOrEqual(prev);
      expect(e).toBeLessThanOrEqual(seg.length - 1);
      expect(seg.tokens[e - 1]).toBe(tpl.imEnd);
      prev = e;
    }
  }
  // Segment rows are in order and every row holds at least one segment.
  expect(b.segRow).toEqual([...b.segRow].sort((x, y) => x - y));
  for (const r of rows) expect(r.length).toBeGreaterThan(0);
  expect(b.tokens.byteLength).toBe(4 * total);
  return rows;
}

const used = (row: readonly number[]): number => row.reduce((a, x) => a + x, 0);

describe('packing over seq_len × window', () => {
  const grid = [512, 2048, 4096, 16384].flatMap((L) => [1, 16, 256].map((window) => [L, window] as const));

  it.each(grid)(
    'seq_len %i, window %i: layout invariants, padding accounted, rows closed only when nothing pending fits',
    (L, window) => {
      const B = 8;
      // At 512 most audio examples are longer than a row: truncate rather than fail the mixture.
      const overlong = L === 512 ? 'truncate' : 'drop';
      const batches = take(
        core.open({ spec: trainSpec({ seqLen: L, window, overlong, batchSize: B, seed: L + window }) }),
        12,
      ).batches;
      let padding = 0;
      let prevLast: number[] | undefined;
      for (const b of batches) {
        const rows = rowsOf(b, B, L);
        padding += rows.reduce((p, r) => p + L - used(r), 0);
        expect(b.stats.paddingTokens).toBe(padding);
        if (window === 1) {
          // Next-fit: a row is closed only when the next pending unit does not fit in it.
          const seq = prevLast ? [prevLast, ...rows] : rows;
          for (let r = 0; r + 1 < seq.length; r++) expect(used(seq[r]!) + seq[r + 1]![0]!).toBeGreaterThan(L);
        }
        prevLast = rows[B - 1];
        if (overlong === 'drop') {
          // Best fit: when the step's last row closed, no unit left in the window fit in it.
          const { pool } = decodeToken(b.resumeToken, core.catalog.reader.fingerprint).state as TrainState;
          const free = L - used(rows[B - 1]!);
          const lists = new Map<number, string[]>();
          expect(pool.length).toBe(3 * window);
          for (let at = 0; at < pool.length; at += 3) {
            const [task, i] = [pool[at + 1]!, pool[at + 2]!];
            if (!lists.has(task)) lists.set(task, facts.splitList(task));
            expect(singleLength(tpl, facts.get(lists.get(task)![i]!))).toBeGreaterThan(free);
          }
        }
      }
      const fill = 1 - padding / (batches.length * B * L);
      if (window >= 16 && L >= 2048) expect(fill).toBeGreaterThan(0.97);
      if (window === 1 && L >= 2048) expect(fill).toBeGreaterThan(0.7);
    },
  );

  it('packed fill is at least 0.99 at seq_len 4096 with window 256 on the sample index', () => {
    const batches = take(core.open({ spec: trainSpec({ window: 256, batchSize: 16 }) }), 40).batches;
    const padding = batches[batches.length - 1]!.stats.paddingTokens;
    expect(1 - padding / (40 * 16 * 4096)).toBeGreaterThanOrEqual(0.99);
  });

  it('packing none puts one segment per row; multiturn rows hold whole conversations', () => {
    for (const b of take(core.open({ spec: trainSpec({ packing: 'none' }) }), 5).batches) {
      expect(rowsOf(b, 8, 4096).every((r) => r.length === 1)).toBe(true);
    }
    for (const b of take(core.open({ spec: trainSpec({ packing: 'multiturn', seqLen: 2048 }) }), 5).batches)
      rowsOf(b, 8, 2048);
  });

  it('seq_len 512 with overlong drop: tasks with no train record that short get no weight, the rest are served', () => {
    const batches = take(core.open({ spec: trainSpec({ seqLen: 512, overlong: 'drop' }) }), 5).batches;
    const last = batches[batches.length - 1]!;
    const served = new Set(batches.flatMap((b) => b.turnTask));
    const overhead = core.catalog.template.system.length + core.catalog.template.turnLength(0, 0, 0);
    core.catalog.reader.tasks.forEach((t) => {
      const tooLong = t.minLength + overhead > 512;
      if (tooLong) expect(last.stats.taskTarget[t.id], t.path).toBe(0);
      if (served.has(t.id)) expect(tooLong, t.path).toBe(false);
    });
    expect(core.catalog.reader.tasks.some((t) => t.minLength + overhead > 512)).toBe(true);
    expect(served.size).toBeGreaterThan(0);
  });
});
