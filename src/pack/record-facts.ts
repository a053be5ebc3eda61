import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { IndexReader } from '../index/index-reader.js';
import type { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import { Pieces } from './layout-pieces.js';

/**
 * What laying a record out needs of it, read from its row and spans once: where its fields are
 * stored, their served lengths, and the audio tokens and codec frames of its input (whole, and
 * with the shared clip left out) and of its output. Planning (fit, lengths), stats and writing
 * the batch all ask for these, several times per example.
 *
 * Kept in a direct-mapped cache of typed arrays keyed by (shard, row), not in an object per drawn
 * record: no allocation per example (a batch of one-codebook clips draws ~320), nothing for the
 * GC to trace, and a fixed size. A slot taken by another record is simply read again: the facts
 * are a pure function of the index and the audio view, so a miss costs time, never correctness.
 * One cache per (index reader, audio view) is shared by every stream of a thread.
 */
export const FACT = {
  SHARD: 0,
  ROW: 1,
  /** The record's first token in its shard's token data. */
  BASE: 2,
  /** Stored ends of the instruction and the input; the output's stored end. */
  INSTR_END: 3,
  OUT_START: 4,
  OUT_END: 5,
  SPAN_START: 6,
  SPAN_COUNT: 7,
  /** Span index (within the record's spans) of the input's first clip, -1 if it has none. */
  FIRST_CLIP: 8,
  INSTR_OUT: 9,
  OUTPUT_OUT: 10,
  OUTPUT_AUDIO: 11,
  OUTPUT_FRAMES: 12,
  INPUT_OUT: 13,
  INPUT_AUDIO: 14,
  INPUT_FRAMES: 15,
  SHARED_OUT: 16,
  SHARED_AUDIO: 17,
  SHARED_FRAMES: 18,
} as const;
const WIDTH = 19;
/** 2^14 slots × 19 doubles ≈ 2.5 MB per (reader, view): far more than the records a window and a batch hold. */
const DEFAULT_BITS = 14;

const caches = new WeakMap<IndexReader, Map<string, RecordFacts>>();

export class RecordFacts {
  /** WIDTH doubles per slot (frames need not be integers); SHARD -1 marks an empty slot. */
  readonly f: Float64Array;
  private readonly pieces: Pieces;
  private readonly shift: number;

  /** A cache of 2^bits slots of its own (tests use tiny ones); streams share one through `of`. */
  constructor(
    private readonly reader: IndexReader,
    private readonly view: AudioView,
    bits = DEFAULT_BITS,
  ) {
    if (!(Number.isInteger(bits) && bits >= 1 && bits <= 20))
      throw new RangeError(`record facts cache bits must be an integer in [1, 20], got ${bits}`);
    this.f = new Float64Array(WIDTH << bits).fill(-1);
    this.shift = 32 - bits;
    this.pieces = new Pieces(view);
  }

  /** The cache for records of `reader` served under `view`. */
  static of(reader: IndexReader, view: AudioView): RecordFacts {
    let byView = caches.get(reader);
    if (!byView) caches.set(reader, (byView = new Map()));
    const key = `${view.layout.name}/${view.k}/${view.q}`;
    let facts = byView.get(key);
    if (!facts) byView.set(key, (facts = new RecordFacts(reader, view)));
    return facts;
  }

  /** The offset in `f` of the facts of record (shard, row), read into its slot first if another record holds it. */
  at(shard: number, row: number): number {
    const o = (Math.imul(row ^ Math.imul(shard, 0x27d4eb2d), 0x9e3779b1) >>> this.shift) * WIDTH;
    const f = this.f;
    if (f[o + FACT.ROW] !== row || f[o + FACT.SHARD] !== shard) this.read(shard, row, o);
    return o;
  }

  /** The record's spans (a view into a cached page, or a copy across pages). */
  spans(o: number): Int32Array {
    const f = this.f;
    return this.reader.spans(f[o + FACT.SHARD]!, f[o + FACT.SPAN_START]!, f[o + FACT.SPAN_COUNT]!);
  }

  private read(shard: number, row: number, o: number): void {
    const r = this.reader.row(shard, row);
    const instr = r[ROW.INSTR_LEN]!;
    const outStart = instr + r[ROW.INPUT_LEN]!;
    const outEnd = outStart + r[ROW.OUTPUT_LEN]!;
    const spanStart = r[ROW.SPAN_START]!;
    const spanCount = r[ROW.SPAN_COUNT]!;
    const base = r[ROW.TOK_START]!;
    const spans = this.reader.spans(shard, spanStart, spanCount);
    let firstClip = -1;
    for (let s = 0, so = 0; so < spans.length; s++, so += SPAN_WIDTH) {
      const start = spans[so + SPAN.REL_START]!;
      if (start >= instr && start < outStart) {
        firstClip = s;
        break;
      }
    }
    const f = this.f;
    // Mark the slot empty while it is filled: a read that throws (a damaged page) leaves no half entry.
    f[o + FACT.SHARD] = -1;
    const p = this.pieces;
    const q = this.view.q;
    f[o + FACT.INSTR_OUT] = p.fill(spans, 0, instr, -1).served();
    p.fill(spans, outStart, outEnd, -1);
    const outputOut = p.served();
    f[o + FACT.OUTPUT_OUT] = outputOut;
    f[o + FACT.OUTPUT_AUDIO] = p.keptAudio(outputOut);
    f[o + FACT.OUTPUT_FRAMES] = p.keptFrames(outputOut, q);
    p.fill(spans, instr, outStart, -1);
    const inputOut = p.served();
    f[o + FACT.INPUT_OUT] = inputOut;
    f[o + FACT.INPUT_AUDIO] = p.keptAudio(inputOut);
    f[o + FACT.INPUT_FRAMES] = p.keptFrames(inputOut, q);
    p.fill(spans, instr, outStart, firstClip);
    const sharedOut = p.served();
    f[o + FACT.SHARED_OUT] = sharedOut;
    f[o + FACT.SHARED_AUDIO] = p.keptAudio(sharedOut);
    f[o + FACT.SHARED_FRAMES] = p.keptFrames(sharedOut, q);
    f[o + FACT.BASE] = base;
    f[o + FACT.INSTR_END] = instr;
    f[o + FACT.OUT_START] = outStart;
    f[o + FACT.OUT_END] = outEnd;
    f[o + FACT.SPAN_START] = spanStart;
    f[o + FACT.SPAN_COUNT] = spanCount;
    f[o + FACT.FIRST_CLIP] = firstClip;
    f[o + FACT.ROW] = row;
    f[o + FACT.SHARD] = shard;
  }
}
