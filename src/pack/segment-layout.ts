import type { ExampleLoc, ExampleTable } from '../index/example-table.js';
import { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import { PIECE, PIECE_WIDTH, Pieces, put } from './layout-pieces.js';
import { FACT, RecordFacts } from './record-facts.js';
import type { ChatTemplate } from '../tokenize/chat-template.js';

/** One user/assistant exchange about one record. */
export interface Turn {
  readonly loc: ExampleLoc;
  /** A later turn of a conversation: the clip shown in turn 1 (the first input audio span) is left out. */
  readonly shareAudio: boolean;
  /** Input tokens served (after leaving out a shared clip); less than all when truncated. */
  readonly inputKeep: number;
}

/** One packed segment: a single example or a multi-turn conversation. */
export interface Segment {
  readonly turns: readonly Turn[];
  readonly length: number;
}

/** What happens to an item longer than a row: dropped (counted), or its answer truncated. */
export const OVERLONG = ['drop', 'truncate'] as const;
export type Overlong = (typeof OVERLONG)[number];

/** An example laid out for a row: its segment, and whether its input was cut to fit. */
export interface Fit {
  readonly segment: Segment;
  readonly truncated: boolean;
}

/**
 * Lays records out through the chat template: lengths without touching tokens (for packing),
 * then the tokens themselves with their loss spans (for the batch). Every length is the served
 * one: under a stream's audio layout (AudioView) a clip may take more or fewer tokens than stored,
 * and packing, truncation and stats must all see what the batch will hold.
 */
export class SegmentLayout {
  readonly table: ExampleTable;
  readonly template: ChatTemplate;
  readonly audio: AudioView;
  /** Every record's layout facts, read once per (shard, row) and shared with the thread's other streams under this view. */
  private readonly facts: RecordFacts;
  /** Scratch for the pieces of one field at a time (writing, truncating). */
  private readonly pieces: Pieces;

  constructor(table: ExampleTable, template: ChatTemplate, audio?: AudioView) {
    this.table = table;
    this.template = template;
    const vocab = table.reader.manifest.vocab;
    this.audio = audio ?? AudioView.of(undefined, vocab.codebooks, vocab.audioPadId);
    this.facts = RecordFacts.of(table.reader, this.audio);
    this.pieces = new Pieces(this.audio);
  }

  /** The pieces of a record's input (the shared clip left out if asked), in the scratch list. */
  private inputPieces(o: number, shareAudio: boolean): Pieces {
    const f = this.facts.f;
    return this.pieces.fill(
      this.facts.spans(o),
      f[o + FACT.INSTR_END]!,
      f[o + FACT.OUT_START]!,
      shareAudio ? f[o + FACT.FIRST_CLIP]! : -1,
    );
  }

  turn(loc: ExampleLoc, shareAudio: boolean): Turn {
    const o = this.facts.at(loc.shard, loc.row);
    return { loc, shareAudio, inputKeep: this.facts.f[o + (shareAudio ? FACT.SHARED_OUT : FACT.INPUT_OUT)]! };
  }

  turnLength(t: Turn): number {
    const f = this.facts.f;
    const o = this.facts.at(t.loc.shard, t.loc.row);
    return this.template.turnLength(f[o + FACT.INSTR_OUT]!, t.inputKeep, f[o + FACT.OUTPUT_OUT]!);
  }

  segmentLength(turns: readonly Turn[]): number {
    let n = this.template.system.length;
    for (const t of turns) n += this.turnLength(t);
    return n;
  }

  /**
   * Fits a single-turn example into `seqLen`: as is, truncated (input cut at a piece boundary,
   * never inside an audio span, the answer kept whole), or not at all. A cut that would leave
   * none of the input's clips is not made: a question about audio without its audio is not a
   * training example.
   */
  fit(loc: ExampleLoc, seqLen: number, overlong: Overlong): Fit | undefined {
    const turn = this.turn(loc, false);
    const length = this.segmentLength([turn]);
    if (length <= seqLen) return { segment: { turns: [turn], length }, truncated: false };
    if (overlong === 'drop') return undefined;
    const budget = turn.inputKeep - (length - seqLen);
    const p = this.inputPieces(this.facts.at(loc.shard, loc.row), false);
    const b = p.buf;
    let keep = 0;
    let keptAudio = false;
    let anyAudio = false;
    let cut = false;
    for (let o = 0, end = p.n * PIECE_WIDTH; o < end; o += PIECE_WIDTH) {
      const audio = b[o + PIECE.AUDIO] === 1;
      anyAudio ||= audio;
      if (cut) continue;
      const out = b[o + PIECE.OUT]!;
      if (keep + out <= budget) {
        keep += out;
        keptAudio ||= audio;
      } else {
        if (!audio) keep = budget;
        cut = true;
      }
    }
    if (budget < 0 || (!keptAudio && anyAudio)) return undefined;
    const short: Turn = { loc, shareAudio: false, inputKeep: keep };
    const cutLength = this.segmentLength([short]);
    return cutLength <= seqLen ? { segment: { turns: [short], length: cutLength }, truncated: true } : undefined;
  }

  /** Audio tokens (spans incl. their markers) a turn carries: kept input spans and the output's. */
  turnAudio(t: Turn): number {
    const f = this.facts.f;
    const o = this.facts.at(t.loc.shard, t.loc.row);
    const whole = t.inputKeep === f[o + (t.shareAudio ? FACT.SHARED_OUT : FACT.INPUT_OUT)];
    const input = whole
      ? f[o + (t.shareAudio ? FACT.SHARED_AUDIO : FACT.INPUT_AUDIO)]!
      : this.inputPieces(o, t.shareAudio).keptAudio(t.inputKeep);
    return input + f[o + FACT.OUTPUT_AUDIO]!;
  }

  /**
   * Codec frames of the clips a turn carries (its kept input clips and its output's): the same
   * under every layout, so audio seconds served are frames / frame rate.
   */
  turnFrames(t: Turn): number {
    const f = this.facts.f;
    const o = this.facts.at(t.loc.shard, t.loc.row);
    const whole = t.inputKeep === f[o + (t.shareAudio ? FACT.SHARED_OUT : FACT.INPUT_OUT)];
    const input = whole
      ? f[o + (t.shareAudio ? FACT.SHARED_FRAMES : FACT.INPUT_FRAMES)]!
      : this.inputPieces(o, t.shareAudio).keptFrames(t.inputKeep, this.audio.q);
    return input + f[o + FACT.OUTPUT_FRAMES]!;
  }

  /**
   * Writes the served tokens of a record's stored range [from, to) at out[pos…], the span at
   * index `skip` left out and only the first `keep` served tokens; returns the end. Under the
   * identity view a whole range is one run of stored tokens: one read, no pieces at all.
   * Otherwise text runs are copied and clips re-arranged one at a time; back-to-back stored runs
   * still make one read.
   */
  private writeRange(
    o: number,
    from: number,
    to: number,
    skip: number,
    keep: number,
    out: Int32Array,
    pos: number,
  ): number {
    const f = this.facts.f;
    const reader = this.table.reader;
    const shard = f[o + FACT.SHARD]!;
    const base = f[o + FACT.BASE]!;
    const whole = this.audio.identity;
    if (whole && skip < 0 && keep >= to - from) {
      if (to > from) reader.readTokens(shard, base + from, to - from, out, pos);
      return pos + to - from;
    }
    const p = this.pieces.fill(this.facts.spans(o), from, to, skip);
    const b = p.buf;
    let runStart = 0;
    let runLen = 0;
    let left = keep;
    for (let q = 0, end = p.n * PIECE_WIDTH; q < end; q += PIECE_WIDTH) {
      const n = Math.min(left, b[q + PIECE.OUT]!);
      if (n <= 0) break;
      left -= n;
      const start = b[q + PIECE.START]!;
      if (whole || b[q + PIECE.AUDIO] === 0) {
        if (runLen > 0 && runStart + runLen !== start) {
          reader.readTokens(shard, base + runStart, runLen, out, pos);
          pos += runLen;
          runLen = 0;
        }
        if (runLen === 0) runStart = start;
        runLen += n;
        continue;
      }
      if (runLen > 0) {
        reader.readTokens(shard, base + runStart, runLen, out, pos);
        pos += runLen;
        runLen = 0;
      }
      // A clip re-arranged by the audio view is always whole: truncation never cuts one.
      const len = b[q + PIECE.LEN]!;
      pos += this.audio.writeSpan(reader.tokenView(shard, base + start, len, this.audio.buffer(len)), out, pos);
    }
    if (runLen > 0) reader.readTokens(shard, base + runStart, runLen, out, pos);
    return pos + runLen;
  }

  /** Writes a segment's tokens at `out[at…]` and appends its supervised [start, end) ranges to `loss`. */
  write(seg: Segment, out: Int32Array, at: number, loss: number[]): void {
    const tpl = this.template;
    const f = this.facts.f;
    // No closure for the template pieces: write runs once per example on the hot path.
    let pos = put(tpl.system, out, at);
    for (const t of seg.turns) {
      const o = this.facts.at(t.loc.shard, t.loc.row);
      const instrEnd = f[o + FACT.INSTR_END]!;
      const outStart = f[o + FACT.OUT_START]!;
      pos = put(tpl.userOpen, out, pos);
      pos = this.writeRange(o, 0, instrEnd, -1, Number.MAX_SAFE_INTEGER, out, pos);
      if (t.inputKeep > 0) {
        pos = put(tpl.sep, out, pos);
        pos = this.writeRange(
          o,
          instrEnd,
          outStart,
          t.shareAudio ? f[o + FACT.FIRST_CLIP]! : -1,
          t.inputKeep,
          out,
          pos,
        );
      }
      pos = put(tpl.userClose, out, pos);
      pos = put(tpl.assistantOpen, out, pos);
      const answer = pos;
      pos = this.writeRange(o, outStart, f[o + FACT.OUT_END]!, -1, Number.MAX_SAFE_INTEGER, out, pos);
      out[pos++] = tpl.imEnd;
      loss.push(answer, pos);
      pos = put(tpl.trail, out, pos);
    }
  }
}
