import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { ExampleLoc, ExampleTable } from '../index/example-table.js';
import { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import { isClip, keptAudio, keptFrames, put, served, type Piece } from './layout-pieces.js';
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

export type Overlong = 'drop' | 'truncate';

/** An example laid out for a row: its segment, and whether its input was cut to fit. */
export interface Fit {
  readonly segment: Segment;
  readonly truncated: boolean;
}

/**
 * A record as laying it out needs it, read from its row and spans once: fields, pieces and served
 * lengths. Planning (fit, lengths), stats (audio tokens, frames) and writing the batch each asked
 * the index for the same row and spans again and rebuilt the same pieces, several times per
 * example: with short examples (one codebook) that was most of a batch's cost.
 */
interface RecordInfo {
  /** The record's first token in its shard's token data. */
  readonly base: number;
  /** Served tokens of the instruction and of the output. */
  readonly instrOut: number;
  readonly outputOut: number;
  /** Input pieces, all of them; `inputShared`: the first clip left out (a later turn of a conversation). */
  readonly input: readonly Piece[];
  readonly inputShared: readonly Piece[];
  /** Instruction and output pieces; the output's served audio tokens and codec frames. */
  readonly instrPieces: readonly Piece[];
  readonly outputPieces: readonly Piece[];
  readonly outputAudio: number;
  readonly outputFrames: number;
  /**
   * Of all of `input` / `inputShared`: served tokens, audio tokens and codec frames. Stats and
   * the batch columns ask for a turn's audio and frames; an untruncated turn (nearly all of them)
   * gets these instead of walking its pieces again.
   */
  readonly inputOut: number;
  readonly inputAudio: number;
  readonly inputFrames: number;
  readonly inputSharedOut: number;
  readonly inputSharedAudio: number;
  readonly inputSharedFrames: number;
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
  /**
   * RecordInfo per location object: a Turn keeps its loc from planning to the batch, so every
   * step of one example finds it; entries go with the locs (no bound to tune, nothing kept for
   * examples no longer held by the planner, a plan cache or a batch being built).
   */
  private readonly memo = new WeakMap<ExampleLoc, RecordInfo>();
  // The last loc asked about: one example's steps (fit, its lengths; stats; write, audio, frames)
  // ask several times in a row, and this skips the WeakMap lookup for all but the first.
  private lastLoc: ExampleLoc | undefined;
  private lastInfo: RecordInfo | undefined;

  constructor(table: ExampleTable, template: ChatTemplate, audio?: AudioView) {
    this.table = table;
    this.template = template;
    const vocab = table.reader.manifest.vocab;
    this.audio = audio ?? AudioView.of(undefined, vocab.codebooks, vocab.audioPadId);
  }

  private info(loc: ExampleLoc): RecordInfo {
    if (loc === this.lastLoc) return this.lastInfo!;
    let r = this.memo.get(loc);
    if (!r) {
      r = this.read(loc);
      this.memo.set(loc, r);
    }
    this.lastLoc = loc;
    this.lastInfo = r;
    return r;
  }

  private read(loc: ExampleLoc): RecordInfo {
    const f = this.table.fields(loc);
    const instr = f[ROW.INSTR_LEN] ?? 0;
    const outStart = instr + (f[ROW.INPUT_LEN] ?? 0);
    const outEnd = outStart + (f[ROW.OUTPUT_LEN] ?? 0);
    const base = f[ROW.TOK_START] ?? 0;
    // A view into a cached page (or a copy): pages are never written once read.
    const spans = this.table.reader.spans(loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    const input = this.pieces(spans, instr, outStart);
    const instrPieces = this.pieces(spans, 0, instr);
    const outputPieces = this.pieces(spans, outStart, outEnd);
    const q = this.audio.q;
    const outputOut = served(outputPieces);
    const firstClip = input.findIndex(isClip);
    const inputShared = firstClip < 0 ? input : [...input.slice(0, firstClip), ...input.slice(firstClip + 1)];
    const inputOut = served(input);
    const inputSharedOut = served(inputShared);
    return {
      base,
      instrOut: served(instrPieces),
      outputOut,
      input,
      inputShared,
      instrPieces,
      outputPieces,
      outputAudio: keptAudio(outputPieces, outputOut),
      outputFrames: keptFrames(outputPieces, outputOut, q),
      inputOut,
      inputAudio: keptAudio(input, inputOut),
      inputFrames: keptFrames(input, inputOut, q),
      inputSharedOut,
      inputSharedAudio: keptAudio(inputShared, inputSharedOut),
      inputSharedFrames: keptFrames(inputShared, inputSharedOut, q),
    };
  }

  /** Pieces of the stored range [from, to): text runs and audio spans in order. */
  private pieces(spans: Int32Array, from: number, to: number): Piece[] {
    const pieces: Piece[] = [];
    let at = from;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      const start = spans[o + SPAN.REL_START] ?? 0;
      const len = spans[o + SPAN.LENGTH] ?? 0;
      if (start < from || start >= to) continue;
      if (start > at) pieces.push({ start: at, len: start - at, out: start - at, audio: false });
      pieces.push({ start, len, out: this.audio.spanLength(len), audio: true });
      at = start + len;
    }
    if (to > at) pieces.push({ start: at, len: to - at, out: to - at, audio: false });
    return pieces;
  }

  /** Input pieces in order: text runs and audio spans, the shared clip (the first) left out if asked. */
  inputPieces(loc: ExampleLoc, shareAudio: boolean): readonly Piece[] {
    const r = this.info(loc);
    return shareAudio ? r.inputShared : r.input;
  }

  turn(loc: ExampleLoc, shareAudio: boolean): Turn {
    const r = this.info(loc);
    return { loc, shareAudio, inputKeep: shareAudio ? r.inputSharedOut : r.inputOut };
  }

  turnLength(t: Turn): number {
    const r = this.info(t.loc);
    return this.template.turnLength(r.instrOut, t.inputKeep, r.outputOut);
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
    const r = this.info(t.loc);
    const input = t.shareAudio ? r.inputSharedAudio : r.inputAudio;
    const whole = t.inputKeep === (t.shareAudio ? r.inputSharedOut : r.inputOut);
    return (whole ? input : keptAudio(t.shareAudio ? r.inputShared : r.input, t.inputKeep)) + r.outputAudio;
  }

  /**
   * Codec frames of the clips a turn carries (its kept input clips and its output's): the same
   * under every layout, so audio seconds served are frames / frame rate.
   */
  turnFrames(t: Turn): number {
    const r = this.info(t.loc);
    const input = t.shareAudio ? r.inputSharedFrames : r.inputFrames;
    const whole = t.inputKeep === (t.shareAudio ? r.inputSharedOut : r.inputOut);
    return (whole ? input : keptFrames(t.shareAudio ? r.inputShared : r.input, t.inputKeep, this.audio.q)) + r.outputFrames;
  }

  /**
   * Writes the first `keep` served tokens of `pieces` at out[pos…]; returns the end. Stored tokens
   * served as they are (text, and clips under the identity view) are copied a run at a time: back
   * to back pieces make one read, not one per piece.
   */
  private writePieces(shard: number, base: number, pieces: readonly Piece[], keep: number, out: Int32Array, pos: number): number {
    const reader = this.table.reader;
    const whole = this.audio.identity;
    let runStart = 0;
    let runLen = 0;
    let left = keep;
    for (const p of pieces) {
      const n = Math.min(left, p.out);
      if (n <= 0) break;
      left -= n;
      if (!p.audio || whole) {
        if (runLen > 0 && runStart + runLen !== p.start) {
          reader.readTokens(shard, base + runStart, runLen, out, pos);
          pos += runLen;
          runLen = 0;
        }
        if (runLen === 0) runStart = p.start;
        runLen += n;
        continue;
      }
      if (runLen > 0) {
        reader.readTokens(shard, base + runStart, runLen, out, pos);
        pos += runLen;
        runLen = 0;
      }
      // A clip re-arranged by the audio view is always whole: truncation never cuts one.
      pos += this.audio.writeSpan(reader.tokenView(shard, base + p.start, p.len, this.audio.buffer(p.len)), out, pos);
    }
    if (runLen > 0) reader.readTokens(shard, base + runStart, runLen, out, pos);
    return pos + runLen;
  }

  /** Writes a segment's tokens at `out[at…]` and appends its supervised [start, end) ranges to `loss`. */
  write(seg: Segment, out: Int32Array, at: number, loss: number[]): void {
    const tpl = this.template;
    // No closure for the template pieces: write runs once per example on the hot path.
    let pos = put(tpl.system, out, at);
    for (const t of seg.turns) {
      const r = this.info(t.loc);
      const shard = t.loc.shard;
      pos = put(tpl.userOpen, out, pos);
      pos = this.writePieces(shard, r.base, r.instrPieces, Number.MAX_SAFE_INTEGER, out, pos);
      if (t.inputKeep > 0) {
        pos = put(tpl.sep, out, pos);
        pos = this.writePieces(shard, r.base, t.shareAudio ? r.inputShared : r.input, t.inputKeep, out, pos);
      }
      pos = put(tpl.userClose, out, pos);
      pos = put(tpl.assistantOpen, out, pos);
      const answer = pos;
      pos = this.writePieces(shard, r.base, r.outputPieces, Number.MAX_SAFE_INTEGER, out, pos);
      out[pos++] = tpl.imEnd;
      loss.push(answer, pos);
      pos = put(tpl.trail, out, pos);
    }
  }
}
