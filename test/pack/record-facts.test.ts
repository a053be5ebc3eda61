import { beforeAll, describe, expect, inject, it } from 'vitest';
import { FACT, RecordFacts } from '../../src/pack/record-facts.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { AudioView } from '../../src/tokenize/audio-layouts/audio-view.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { openCore } from '../helpers/core-streams.js';

/**
 * The layout's per-record facts cache (src/pack/record-facts.ts): direct-mapped typed arrays keyed
 * by (shard, row), where a record whose slot another record took is read again. Checked against
 * the records' rows and spans read independently (IndexFacts), and with caches so small that
 * nearly every lookup evicts another record.
 */
let core: DataServiceCore;
let facts: IndexFacts;

beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  facts = new IndexFacts(core.catalog.reader);
});

const FIELDS = Object.keys(FACT) as (keyof typeof FACT)[];
const read = (c: RecordFacts, shard: number, row: number): Record<string, number> => {
  const o = c.at(shard, row);
  return Object.fromEntries(FIELDS.map((k) => [k, c.f[o + FACT[k]]!]));
};

/** What the facts must be, from the record's stored fields and spans, for a view serving `k` of `q` codebooks flat. */
function expected(r: ReturnType<IndexFacts['byUuid']['get']> & object, q: number, k: number): Record<string, number> {
  const served = (len: number): number => ((len - 2) / q) * k + 2;
  const within = (from: number, to: number): { audio: number; frames: number; stored: number } => {
    let audio = 0;
    let frames = 0;
    let stored = 0;
    for (const s of r.spans) {
      if (s.start < from || s.start >= to) continue;
      audio += served(s.length);
      frames += (s.length - 2) / q;
      stored += s.length;
    }
    return { audio, frames, stored };
  };
  const il = r.instr.length;
  const outStart = il + r.input.length;
  const outEnd = outStart + r.output.length;
  const instr = within(0, il);
  const input = within(il, outStart);
  const output = within(outStart, outEnd);
  const firstClip = r.spans.findIndex((s) => s.start >= il && s.start < outStart);
  const clip = r.spans[firstClip];
  const served1 = clip ? served(clip.length) : 0;
  const inputOut = r.input.length - input.stored + input.audio;
  return {
    SHARD: r.shard,
    ROW: r.row,
    INSTR_END: il,
    OUT_START: outStart,
    OUT_END: outEnd,
    SPAN_COUNT: r.spans.length,
    FIRST_CLIP: firstClip,
    INSTR_OUT: il - instr.stored + instr.audio,
    OUTPUT_OUT: r.output.length - output.stored + output.audio,
    OUTPUT_AUDIO: output.audio,
    OUTPUT_FRAMES: output.frames,
    INPUT_OUT: inputOut,
    INPUT_AUDIO: input.audio,
    INPUT_FRAMES: input.frames,
    SHARED_OUT: inputOut - served1,
    SHARED_AUDIO: input.audio - served1,
    SHARED_FRAMES: input.frames - (clip ? (clip.length - 2) / q : 0),
  };
}

describe('record facts cache', () => {
  it("holds each record's served lengths, audio tokens and frames (whole input, shared clip left out, output), all codebooks and one", () => {
    const { codebooks: q, audioPadId } = core.catalog.reader.manifest.vocab;
    const records = [...facts.byUuid.values()];
    const withClips = records.filter((r) => r.firstInputAudio !== undefined).length;
    expect(withClips).toBeGreaterThan(100);
    for (const k of [q, 1]) {
      const cache = new RecordFacts(core.catalog.reader, AudioView.of({ codebooks: k, layout: 'flat' }, q, audioPadId));
      for (const r of records) {
        const got = read(cache, r.shard, r.row);
        const want = expected(r, q, k);
        for (const [name, v] of Object.entries(want))
          if (got[name] !== v) expect({ uuid: r.uuid, k, [name]: got[name] }).toEqual({ uuid: r.uuid, k, [name]: v });
      }
    }
  });

  it('a record read again after another took its slot has the same facts (2 and 4 slots, records visited in a shuffled order)', () => {
    const { codebooks: q, audioPadId } = core.catalog.reader.manifest.vocab;
    const view = AudioView.of({ codebooks: 1, layout: 'delay' }, q, audioPadId);
    const big = new RecordFacts(core.catalog.reader, view);
    const records = [...facts.byUuid.values()].slice(0, 400);
    const want = new Map(records.map((r) => [r.uuid, read(big, r.shard, r.row)]));
    let seed = 12345;
    const order = [...records, ...records, ...records]
      .map((r) => ({ r, key: (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.r);
    for (const bits of [1, 2]) {
      const tiny = new RecordFacts(core.catalog.reader, view, bits);
      let mismatches = 0;
      for (const r of order)
        if (JSON.stringify(read(tiny, r.shard, r.row)) !== JSON.stringify(want.get(r.uuid))) mismatches++;
      expect(mismatches).toBe(0);
    }
  });

  it('streams of one view share a cache; another view gets its own; bad sizes are refused', () => {
    const { codebooks: q, audioPadId } = core.catalog.reader.manifest.vocab;
    const flat1 = AudioView.of({ codebooks: 1, layout: 'flat' }, q, audioPadId);
    expect(RecordFacts.of(core.catalog.reader, flat1)).toBe(
      RecordFacts.of(core.catalog.reader, AudioView.of({ codebooks: 1, layout: 'flat' }, q, audioPadId)),
    );
    expect(RecordFacts.of(core.catalog.reader, flat1)).not.toBe(
      RecordFacts.of(core.catalog.reader, AudioView.of({ codebooks: 1, layout: 'delay' }, q, audioPadId)),
    );
    expect(RecordFacts.of(core.catalog.reader, flat1)).not.toBe(
      RecordFacts.of(core.catalog.reader, AudioView.of(undefined, q, audioPadId)),
    );
    expect(() => new RecordFacts(core.catalog.reader, flat1, 0)).toThrow(/bits must be an integer in \[1, 20\], got 0/);
  });
});
