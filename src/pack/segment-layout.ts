import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { ExampleLoc, ExampleTable } from '../index/example-table.js';
import { AudioView } from '../tokenize/audio-layouts/audio-view.js';
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

/** A piece of a record's field: stored at [start, start + len) relative to the record's first token, `out` tokens served. */
interface Piece {
  readonly start: number;
  readonly len: number;
  readonly out: number;
  readonly audio: boolean;
}

export type Overlong = 'drop' | 'truncate';

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

  constructor(table: ExampleTable, template: ChatTemplate, audio?: AudioView) {
    this.table = table;
    this.template = template;
    const vocab = table.reader.manifest.vocab;
    this.audio = audio ?? AudioView.of(undefined, vocab.codebooks, vocab.audioPadId);
  }

  /** Pieces of the stored range [from, to): text runs and audio spans in order, the first clip left out if asked. */
  private pieces(loc: ExampleLoc, from: number, to: number, skipFirstClip: boolean): Piece[] {
    const f = this.table.fields(loc);
    const spans = this.table.reader.spans(loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    const pieces: Piece[] = [];
    let at = from;
    let skip = skipFirstClip;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      const start = spans[o + SPAN.REL_START] ?? 0;
      const len = spans[o + SPAN.LENGTH] ?? 0;
      if (start < from || start >= to) continue;
      if (start > at) pieces.push({ start: at, len: start - at, out: start - at, audio: false });
      if (!skip) pieces.push({ start, len, out: this.audio.spanLength(len), audio: true });
      skip = false;
      at = start + len;
    }
    if (to > at) pieces.push({ start: at, len: to - at, out: to - at, audio: false });
    return pieces;
  }

  /** Input pieces in order: text runs and audio spans, the shared clip left out if asked. */
  inputPieces(loc: ExampleLoc, shareAudio: boolean): Piece[] {
    const f = this.table.fields(loc);
    const instr = f[ROW.INSTR_LEN] ?? 0;
    return this.pieces(loc, instr, instr + (f[ROW.INPUT_LEN] ?? 0), shareAudio);
  }

  /** The stored range of the instruction (0) or output (2) field. */
  private fieldRange(loc: ExampleLoc, field: 0 | 2): [number, number] {
    const f = this.table.fields(loc);
    const instr = f[ROW.INSTR_LEN] ?? 0;
    if (field === 0) return [0, instr];
    const from = instr + (f[ROW.INPUT_LEN] ?? 0);
    return [from, from + (f[ROW.OUTPUT_LEN] ?? 0)];
  }

  /** Served tokens of the instruction or output field. */
  private fieldLength(loc: ExampleLoc, field: 0 | 2): number {
    const [from, to] = this.fieldRange(loc, field);
    if (this.audio.identity) return to - from;
    return this.pieces(loc, from, to, false).reduce((n, p) => n + p.out, 0);
  }

  turn(loc: ExampleLoc, shareAudio: boolean): Turn {
    const inputKeep = this.inputPieces(loc, shareAudio).reduce((n, p) => n + p.out, 0);
    return { loc, shareAudio, inputKeep };
  }

  turnLength(t: Turn): number {
    return this.template.turnLength(this.fieldLength(t.loc, 0), t.inputKeep, this.fieldLength(t.loc, 2));
  }

  segmentLength(turns: readonly Turn[]): number {
    return turns.reduce((n, t) => n + this.turnLength(t), this.template.system.length);
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
    const pieces = this.inputPieces(loc, false);
    let keep = 0;
    let keptAudio = false;
    for (const p of pieces) {
      if (keep + p.out <= budget) {
        keep += p.out;
        keptAudio ||= p.audio;
      } else {
        if (!p.audio) keep = budget;
        break;
      }
    }
    if (budget < 0 || (!keptAudio && pieces.some((p) => p.audio))) return undefined;
    const cut: Turn = { loc, shareAudio: false, inputKeep: keep };
    const cutLength = this.segmentLength([cut]);
    return cutLength <= seqLen ? { segment: { turns: [cut], length: cutLength }, truncated: true } : undefined;
  }

  /** Audio tokens (spans incl. their markers) a turn carries: kept input spans and the output's. */
  turnAudio(t: Turn): number {
    let left = t.inputKeep;
    let n = 0;
    for (const p of this.inputPieces(t.loc, t.shareAudio)) {
      const k = Math.min(left, p.out);
      if (k <= 0) break;
      if (p.audio) n += k;
      left -= k;
    }
    return n + this.outputAudio(t.loc);
  }

  /**
   * Codec frames of the clips a turn carries (its kept input clips and its output's): the same
   * under every layout, so audio seconds served are frames / frame rate.
   */
  turnFrames(t: Turn): number {
    const q = this.audio.q;
    let left = t.inputKeep;
    let frames = 0;
    for (const p of this.inputPieces(t.loc, t.shareAudio)) {
      const k = Math.min(left, p.out);
      if (k <= 0) break;
      if (p.audio) frames += (p.len - 2) / q;
      left -= k;
    }
    const [from, to] = this.fieldRange(t.loc, 2);
    for (const p of this.pieces(t.loc, from, to, false)) if (p.audio) frames += (p.len - 2) / q;
    return frames;
  }

  /** Writes a stored range's served tokens at out[pos…] (clips through the audio view); returns the end. */
  private writeRange(loc: ExampleLoc, base: number, from: number, to: number, out: Int32Array, pos: number): number {
    const reader = this.table.reader;
    if (this.audio.identity) {
      reader.readTokens(loc.shard, base + from, to - from, out, pos);
      return pos + to - from;
    }
    for (const p of this.pieces(loc, from, to, false)) pos = this.writePiece(loc, base, p, p.out, out, pos);
    return pos;
  }

  /** Writes `n` served tokens of a piece (a clip is always whole: truncation never cuts one). */
  private writePiece(loc: ExampleLoc, base: number, p: Piece, n: number, out: Int32Array, pos: number): number {
    const reader = this.table.reader;
    if (!p.audio || this.audio.identity) {
      reader.readTokens(loc.shard, base + p.start, n, out, pos);
      return pos + n;
    }
    const stored = this.audio.buffer(p.len);
    reader.readTokens(loc.shard, base + p.start, p.len, stored, 0);
    return pos + this.audio.writeSpan(stored, out, pos);
  }

  /** Writes a segment's tokens at `out[at…]` and appends its supervised [start, end) ranges to `loss`. */
  write(seg: Segment, out: Int32Array, at: number, loss: number[]): void {
    const { template: tpl, table } = this;
    let pos = at;
    const put = (xs: Int32Array): void => {
      out.set(xs, pos);
      pos += xs.length;
    };
    put(tpl.system);
    for (const t of seg.turns) {
      const base = table.fields(t.loc)[ROW.TOK_START] ?? 0;
      put(tpl.userOpen);
      pos = this.writeRange(t.loc, base, ...this.fieldRange(t.loc, 0), out, pos);
      if (t.inputKeep > 0) {
        put(tpl.sep);
        let left = t.inputKeep;
        for (const p of this.inputPieces(t.loc, t.shareAudio)) {
          const n = Math.min(left, p.out);
          if (n <= 0) break;
          pos = this.writePiece(t.loc, base, p, n, out, pos);
          left -= n;
        }
      }
      put(tpl.userClose);
      put(tpl.assistantOpen);
      const answer = pos;
      pos = this.writeRange(t.loc, base, ...this.fieldRange(t.loc, 2), out, pos);
      out[pos++] = tpl.imEnd;
      loss.push(answer, pos);
      put(tpl.trail);
    }
  }

  /** Audio tokens (served) inside the record's output. */
  private outputAudio(loc: ExampleLoc): number {
    const f = this.table.fields(loc);
    const outStart = (f[ROW.INSTR_LEN] ?? 0) + (f[ROW.INPUT_LEN] ?? 0);
    const spans = this.table.reader.spans(loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    let n = 0;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      if ((spans[o + SPAN.REL_START] ?? 0) >= outStart) n += this.audio.spanLength(spans[o + SPAN.LENGTH] ?? 0);
    }
    return n;
  }
}
