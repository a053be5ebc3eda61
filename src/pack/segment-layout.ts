import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { ExampleLoc, ExampleTable } from '../stream/example-table.js';
import type { ChatTemplate } from './chat-template.js';

/** One user/assistant exchange about one record. */
export interface Turn {
  readonly loc: ExampleLoc;
  /** A later turn of a conversation: the clip shown in turn 1 (the first input audio span) is left out. */
  readonly shareAudio: boolean;
  /** Input tokens kept (after leaving out a shared clip); less than all when truncated. */
  readonly inputKeep: number;
}

/** One packed segment: a single example or a multi-turn conversation. */
export interface Segment {
  readonly turns: readonly Turn[];
  readonly length: number;
}

/** A piece of a record's input, relative to the record's first token. */
interface Piece {
  readonly start: number;
  readonly len: number;
  readonly audio: boolean;
}

export type Overlong = 'drop' | 'truncate';

/**
 * Lays records out through the chat template: lengths without touching tokens (for packing),
 * then the tokens themselves with their loss spans (for the batch).
 */
export class SegmentLayout {
  readonly table: ExampleTable;
  readonly template: ChatTemplate;

  constructor(table: ExampleTable, template: ChatTemplate) {
    this.table = table;
    this.template = template;
  }

  /** Input pieces in order: text runs and audio spans, the shared clip left out if asked. */
  inputPieces(loc: ExampleLoc, shareAudio: boolean): Piece[] {
    const f = this.table.fields(loc);
    const instr = f[ROW.INSTR_LEN] ?? 0;
    const end = instr + (f[ROW.INPUT_LEN] ?? 0);
    const spans = this.table.reader.spans(loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    const pieces: Piece[] = [];
    let at = instr;
    let skipped = !shareAudio;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      const start = spans[o + SPAN.REL_START] ?? 0;
      const len = spans[o + SPAN.LENGTH] ?? 0;
      if (start < instr || start >= end) continue;
      if (start > at) pieces.push({ start: at, len: start - at, audio: false });
      if (skipped) pieces.push({ start, len, audio: true });
      skipped = true;
      at = start + len;
    }
    if (end > at) pieces.push({ start: at, len: end - at, audio: false });
    return pieces;
  }

  turn(loc: ExampleLoc, shareAudio: boolean): Turn {
    const inputKeep = this.inputPieces(loc, shareAudio).reduce((n, p) => n + p.len, 0);
    return { loc, shareAudio, inputKeep };
  }

  turnLength(t: Turn): number {
    const f = this.table.fields(t.loc);
    return this.template.turnLength(f[ROW.INSTR_LEN] ?? 0, t.inputKeep, f[ROW.OUTPUT_LEN] ?? 0);
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
  fit(loc: ExampleLoc, seqLen: number, overlong: Overlong): { segment: Segment; truncated: boolean } | undefined {
    const turn = this.turn(loc, false);
    const length = this.segmentLength([turn]);
    if (length <= seqLen) return { segment: { turns: [turn], length }, truncated: false };
    if (overlong === 'drop') return undefined;
    const budget = turn.inputKeep - (length - seqLen);
    const pieces = this.inputPieces(loc, false);
    let keep = 0;
    let keptAudio = false;
    for (const p of pieces) {
      if (keep + p.len <= budget) {
        keep += p.len;
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
      const k = Math.min(left, p.len);
      if (k <= 0) break;
      if (p.audio) n += k;
      left -= k;
    }
    return n + this.outputAudio(t.loc);
  }

  /** Writes a segment's tokens at `out[at…]` and appends its supervised [start, end) ranges to `loss`. */
  write(seg: Segment, out: Int32Array, at: number, loss: number[]): void {
    const { template: tpl, table } = this;
    const reader = table.reader;
    let pos = at;
    const put = (xs: Int32Array): void => {
      out.set(xs, pos);
      pos += xs.length;
    };
    put(tpl.system);
    for (const t of seg.turns) {
      const f = table.fields(t.loc);
      const base = f[ROW.TOK_START] ?? 0;
      const instr = f[ROW.INSTR_LEN] ?? 0;
      const output = f[ROW.OUTPUT_LEN] ?? 0;
      put(tpl.userOpen);
      reader.readTokens(t.loc.shard, base, instr, out, pos);
      pos += instr;
      if (t.inputKeep > 0) {
        put(tpl.sep);
        let left = t.inputKeep;
        for (const p of this.inputPieces(t.loc, t.shareAudio)) {
          const n = Math.min(left, p.len);
          if (n <= 0) break;
          reader.readTokens(t.loc.shard, base + p.start, n, out, pos);
          pos += n;
          left -= n;
        }
      }
      put(tpl.userClose);
      put(tpl.assistantOpen);
      const answer = pos;
      reader.readTokens(t.loc.shard, base + instr + (f[ROW.INPUT_LEN] ?? 0), output, out, pos);
      pos += output;
      out[pos++] = tpl.imEnd;
      loss.push(answer, pos);
      put(tpl.trail);
    }
  }

  /** Audio tokens inside the record's output. */
  private outputAudio(loc: ExampleLoc): number {
    const f = this.table.fields(loc);
    const outStart = (f[ROW.INSTR_LEN] ?? 0) + (f[ROW.INPUT_LEN] ?? 0);
    const spans = this.table.reader.spans(loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    let n = 0;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      if ((spans[o + SPAN.REL_START] ?? 0) >= outStart) n += spans[o + SPAN.LENGTH] ?? 0;
    }
    return n;
  }
}
