import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { chatml, loadChatml, type Chatml } from '../helpers/chatml.js';
import { IndexFacts, type RecordFacts } from '../helpers/index-facts.js';
import { openCore, segments, take, trainSpec, type SegView } from '../helpers/core-streams.js';

const SYSTEM = 'You are a careful listener. Answer briefly.';

let core: DataServiceCore;
let withSystem: DataServiceCore;
let facts: IndexFacts;
let plain: Chatml;
let system: Chatml;

beforeAll(async () => {
  const index = inject('sampleIndex');
  core = await openCore(index);
  withSystem = await openCore(index, { 'stream.system_prompt': SYSTEM });
  facts = new IndexFacts(core.catalog.reader);
  plain = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer);
  system = await loadChatml(core.catalog.reader.manifest.vocab.tokenizer, SYSTEM);
});

function expectDecodes(seg: SegView, withSystemTurn: boolean): RecordFacts[] {
  const turns = seg.uuids.map((u) => facts.get(u));
  expect(turns.map((r) => r.task)).toEqual(seg.turnTasks);
  expect(seg.task).toBe(turns[0]!.task);
  const want = chatml(withSystemTurn ? system : plain, turns);
  expect(seg.length).toBe(want.tokens.length);
  expect(Array.from(seg.tokens)).toEqual(want.tokens);
  expect(seg.loss).toEqual(want.loss);
  const audio = turns.reduce(
    (n, r, k) =>
      n +
      r.spans.reduce((m, s) => m + s.length, 0) -
      (k > 0 && r.firstInputAudio
        ? r.spans.find((s) => s.id === r.firstInputAudio && s.start >= r.instr.length)!.length
        : 0),
    0,
  );
  expect(seg.audioTokens).toBe(audio);
  expect(seg.textTokens).toBe(seg.length - audio);
  return turns;
}

function run(c: DataServiceCore, spec: ReturnType<typeof trainSpec>, n: number): WireBatch[] {
  return take(c.open({ spec }), n).batches;
}

describe('every served segment decodes back to exactly its record(s) through ChatML', () => {
  it.each(['none', 'packed'] as const)(
    '%s: single-turn segments, labels exactly on the answer and its <|im_end|>',
    (packing) => {
      let n = 0;
      for (const b of run(core, trainSpec({ packing, seed: 5 }), 25)) {
        for (const seg of segments(b)) {
          expect(seg.uuids).toHaveLength(1);
          expectDecodes(seg, false);
          n++;
        }
        expect(b.lossSpans.length / 2).toBe(b.uuids.length);
      }
      expect(n).toBeGreaterThan(packing === 'none' ? 150 : 1000);
    },
  );

  it('with a system prompt, every segment starts with the system turn (unsupervised)', () => {
    for (const packing of ['packed', 'multiturn'] as const) {
      for (const b of run(withSystem, trainSpec({ packing, seed: 2 }), 8))
        for (const seg of segments(b)) expectDecodes(seg, true);
    }
  });

  it('multiturn: turn 1 carries the shared clip, later turns leave it out, every answer is supervised', () => {
    let conversations = 0;
    let turns = 0;
    for (const b of run(core, trainSpec({ packing: 'multiturn', seed: 9 }), 40)) {
      for (const seg of segments(b)) {
        const recs = expectDecodes(seg, false);
        expect(seg.loss).toHaveLength(recs.length);
        if (recs.length === 1) continue;
        conversations++;
        turns += recs.length;
        const clip = recs[0]!.firstInputAudio;
        expect(clip).toBeDefined();
        // Every turn is about the same first input clip, one record per task, all train records.
        for (const r of recs) {
          expect(r.firstInputAudio).toBe(clip);
          expect(r.splits & 1).toBe(1);
        }
        expect(new Set(recs.map((r) => r.task)).size).toBe(recs.length);
        expect(new Set(seg.uuids).size).toBe(recs.length);
        expect(recs.length).toBeLessThanOrEqual(4);
      }
    }
    expect(conversations).toBeGreaterThan(50);
    expect(turns).toBeGreaterThan(2 * conversations);
  });

  it('multiturn: max_turns and seq_len bound a conversation', () => {
    for (const [maxTurns, seqLen] of [
      [2, 4096],
      [6, 16384],
      [4, 1024],
    ] as const) {
      const batches = run(
        core,
        trainSpec({ packing: 'multiturn', maxTurns, seqLen, overlong: 'truncate', seed: 1 }),
        10,
      );
      const segs = batches.flatMap(segments);
      expect(Math.max(...segs.map((s) => s.uuids.length))).toBeLessThanOrEqual(maxTurns);
      for (const s of segs) expect(s.offset + s.length).toBeLessThanOrEqual(seqLen);
      if (seqLen === 16384) expect(segs.some((s) => s.uuids.length > 2)).toBe(true);
    }
  });
});
