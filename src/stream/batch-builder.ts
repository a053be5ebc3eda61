import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { WireBatch, WireExample } from './wire-types.js';

const asBytes = (a: Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Materializes one rank's rows: tokens of every segment back to back, plus per-segment columns. */
export function buildBatch(layout: SegmentLayout, rows: readonly (readonly Segment[])[], taskDomain: ArrayLike<number>): Omit<WireBatch, 'step' | 'rank' | 'worldSize' | 'batchSize' | 'seqLen' | 'resumeToken' | 'stats' | 'heldoutFingerprint' | 'examples' | 'totalSteps'> {
  let total = 0;
  let segs = 0;
  for (const row of rows) for (const s of row) {
    total += s.length;
    segs++;
  }
  const tokens = new Int32Array(total);
  const b = {
    padId: layout.template.pad,
    segRow: new Array<number>(segs),
    segOffset: new Array<number>(segs),
    segLength: new Array<number>(segs),
    segTask: new Array<number>(segs),
    segDomain: new Array<number>(segs),
    segTextTokens: new Array<number>(segs),
    segAudioTokens: new Array<number>(segs),
    segAudioFrames: new Array<number>(segs),
    segTurns: new Array<number>(segs),
    uuids: [] as string[],
    turnTask: [] as number[],
    lossSpans: [] as number[],
  };
  const reader = layout.table.reader;
  let at = 0;
  let k = 0;
  rows.forEach((row, r) => {
    let offset = 0;
    for (const seg of row) {
      layout.write(seg, tokens, at, b.lossSpans);
      let audio = 0;
      let frames = 0;
      for (const t of seg.turns) {
        audio += layout.turnAudio(t);
        frames += layout.turnFrames(t);
        b.uuids.push(reader.uuid(t.loc.shard, t.loc.row));
        b.turnTask.push(t.loc.task);
      }
      const task = seg.turns[0]?.loc.task ?? 0;
      b.segRow[k] = r;
      b.segOffset[k] = offset;
      b.segLength[k] = seg.length;
      b.segTask[k] = task;
      b.segDomain[k] = taskDomain[task] ?? 0;
      b.segTextTokens[k] = seg.length - audio;
      b.segAudioTokens[k] = audio;
      b.segAudioFrames[k] = frames;
      b.segTurns[k] = seg.turns.length;
      k++;
      offset += seg.length;
      at += seg.length;
    }
  });
  return { ...b, tokens: asBytes(tokens) };
}

/** One generation-evaluation item per segment: the prompt up to the assistant header, and the reference. */
export function buildExamples(layout: SegmentLayout, rows: readonly (readonly Segment[])[]): WireExample[] {
  const reader = layout.table.reader;
  return rows.flat().map((seg) => {
    const buf = new Int32Array(seg.length);
    const loss: number[] = [];
    layout.write(seg, buf, 0, loss);
    const [start = 0, end = 0] = loss;
    const t = seg.turns[0]!;
    const f = layout.table.fields(t.loc);
    const outStart = (f[ROW.INSTR_LEN] ?? 0) + (f[ROW.INPUT_LEN] ?? 0);
    const spans = reader.spans(t.loc.shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    const audioIds: string[] = [];
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      if ((spans[o + SPAN.REL_START] ?? 0) >= outStart) audioIds.push(reader.string(t.loc.shard, spans[o + SPAN.ID_OFF] ?? 0, spans[o + SPAN.ID_LEN] ?? 0));
    }
    return {
      uuid: reader.uuid(t.loc.shard, t.loc.row),
      task: t.loc.task,
      promptTokens: asBytes(buf.subarray(0, start)),
      answerTokens: asBytes(buf.subarray(start, end)),
      answerText: reader.string(t.loc.shard, f[ROW.OUT_TEXT_OFF] ?? 0, f[ROW.OUT_TEXT_LEN] ?? 0),
      answerAudioIds: audioIds,
    };
  });
}
