import { ROW, SPAN, SPAN_WIDTH } from '../index/format.js';
import type { Segment, SegmentLayout } from '../pack/segment-layout.js';
import type { PlannedStep } from './plan-cache.js';
import type { DroppedItems, EndFigures } from './stream-plan.js';
import type { Placement, StreamSpec } from './stream-spec.js';
import type { WireBatch, WireEnd, WireExample, WireResponse, WireStats } from './wire-types.js';

const asBytes = (a: Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/**
 * Room kept in front of a batch's tokens: more than a StreamResponse writes ahead of them (its
 * own tag and length, the batch's six scalar fields, the tokens' tag and length: at most ~55
 * bytes), a multiple of 4 (the tokens are an Int32Array view). With room after them as well, the
 * wire encoder writes the message around the tokens in place (response-encoder.ts) instead of
 * allocating ~130 KB and copying them into it: ~12 % of a packed batch's CPU.
 */
export const TOKENS_HEAD = 64;
/**
 * Token buffers made with that room, until a response is written around their tokens: only these
 * may be written into (any other buffer, a pooled one above all, may hold someone else's bytes).
 */
export const tokensWithRoom = new WeakSet<ArrayBufferLike>();
/** Bytes kept per turn for its uuid (a 36-character UUID; a longer one only costs the in-place encoding). */
const UUID_ROOM = 48;

/**
 * Room for what a batch message carries after its tokens, other than its rows' columns: the
 * resume token, the stats (every number at most 11 bytes with its tag), the held-out fingerprint
 * and the scalar fields. An upper bound for the usual message; when it falls short the encoder copies.
 */
export function messageRoom(token: Uint8Array, stats: WireStats, fingerprint: string): number {
  let n = 128 + token.length + 3 * fingerprint.length;
  for (const v of Object.values(stats)) n += Array.isArray(v) ? 6 + 11 * v.length : 11;
  return n;
}

/**
 * Materializes one rank's rows: tokens of every segment back to back, plus per-segment columns.
 * The tokens sit in a buffer with TOKENS_HEAD bytes before them and, after them, `room` bytes
 * (see messageRoom) plus a bound for the rows' columns, uuids and loss spans.
 */
export function buildBatch(
  layout: SegmentLayout,
  rows: readonly (readonly Segment[])[],
  taskDomain: ArrayLike<number>,
  room = 0,
): Omit<
  WireBatch,
  | 'step'
  | 'rank'
  | 'worldSize'
  | 'batchSize'
  | 'seqLen'
  | 'resumeToken'
  | 'stats'
  | 'heldoutFingerprint'
  | 'examples'
  | 'totalSteps'
  | 'taskDropped'
  | 'droppedFitSeqLen'
> {
  let total = 0;
  let segs = 0;
  let turns = 0;
  for (const row of rows)
    for (const s of row) {
      total += s.length;
      segs++;
      turns += s.turns.length;
    }
  // Nine columns of one varint (≤ 5 bytes) per segment; per turn its uuid, task and two loss offsets.
  const tail = total === 0 ? 0 : room + 64 + 45 * segs + turns * (UUID_ROOM + 3 + 5 + 10);
  const tokens = new Int32Array(new ArrayBuffer(TOKENS_HEAD + 4 * total + tail), TOKENS_HEAD, total);
  if (total > 0) tokensWithRoom.add(tokens.buffer);
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
      if ((spans[o + SPAN.REL_START] ?? 0) >= outStart)
        audioIds.push(reader.string(t.loc.shard, spans[o + SPAN.ID_OFF] ?? 0, spans[o + SPAN.ID_LEN] ?? 0));
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

/** What a batch message says besides its rows. */
export interface BatchHeader {
  readonly step: number;
  readonly planned: PlannedStep;
  readonly placement: Placement;
  readonly spec: StreamSpec;
  readonly fingerprint: string;
  readonly totalSteps: number;
  /** What of the set fits no row (said on the first batch of a call). */
  readonly dropped: DroppedItems | undefined;
}

/** A rank's batch message: its rows (sent as token rows, or as `examples`) and the step's token, stats and counts. */
export function batchMessage(
  layout: SegmentLayout,
  rows: readonly (readonly Segment[])[],
  taskDomain: Int32Array,
  examples: boolean,
  h: BatchHeader,
): WireResponse {
  const { planned, dropped } = h;
  const body = buildBatch(
    layout,
    examples ? [] : rows,
    taskDomain,
    messageRoom(planned.token, planned.stats, h.fingerprint),
  );
  return {
    batch: {
      ...body,
      step: h.step,
      rank: h.placement.rank,
      worldSize: h.placement.worldSize,
      batchSize: rows.length,
      seqLen: h.spec.seqLen,
      resumeToken: planned.token,
      stats: planned.stats,
      heldoutFingerprint: h.fingerprint,
      examples: examples ? buildExamples(layout, rows) : [],
      totalSteps: h.totalSteps,
      taskDropped: dropped ? [...dropped.perTask] : [],
      droppedFitSeqLen: dropped?.fitSeqLen ?? 0,
    },
  };
}

/** A stream's end message: its per-task figures and the token of the last batch sent. */
export function endMessage(f: EndFigures, resumeToken: Buffer, reason: WireEnd['reason']): WireResponse {
  const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);
  return {
    end: {
      taskExamples: f.taskExamples,
      totalTaskExamples: f.totalTaskExamples,
      examples: sum(f.taskExamples),
      totalExamples: sum(f.totalTaskExamples),
      resumeToken,
      reason,
      taskDropped: f.taskDropped,
    },
  };
}
