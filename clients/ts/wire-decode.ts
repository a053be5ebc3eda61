import { malformed } from './errors.js';
import type {
  Batch,
  BatchStats,
  CorpusInfo,
  DomainStats,
  DroppedAtOpen,
  EvalExample,
  SegmentInfo,
  StreamSummary,
  TaskStats,
  WireBatch,
  WireEnd,
  WireExample,
  WireStats,
} from './wire-types.js';

/** The label of unsupervised positions (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

/** Whether this host stores an Int32Array little-endian (as the wire does): then bytes are copied whole. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Little-endian int32 bytes as an Int32Array (copied: the bytes may be unaligned). One block
 * copy on a little-endian host; a DataView read per value otherwise. */
export function int32s(bytes: Uint8Array): Int32Array {
  if (bytes.byteLength % 4 !== 0) throw malformed(`${bytes.byteLength} token bytes, not a multiple of 4`);
  const out = new Int32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt32(i * 4, true);
  return out;
}

/** 0, 1, 2, …: a segment's position ids are a prefix of it (one block copy per segment). */
let ramp = new Int32Array(0);
function positions(n: number): Int32Array {
  if (ramp.length < n) {
    ramp = new Int32Array(Math.max(n, 2 * ramp.length));
    for (let i = 0; i < ramp.length; i++) ramp[i] = i;
  }
  return ramp.subarray(0, n);
}

/** The segment holding flattened token `t`: the last i with cu[i] <= t < cu[i + 1] (empty segments skipped). */
function segmentAt(cu: Int32Array, t: number): number {
  let lo = 0;
  let hi = cu.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cu[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

type Dense = Pick<Batch, 'inputIds' | 'labels' | 'positionIds' | 'segmentIds' | 'cuSeqlens' | 'maxSeqlen'>;

/**
 * Rebuilds the dense [B, L] arrays from a wire batch: segment i takes the next `segLength[i]`
 * tokens and sits in row `segRow[i]` at column `segOffset[i]`; loss spans are [start, end)
 * pairs in the flattened token coordinates. Throws DATA_LOSS for an inconsistent message.
 */
export function denseArrays(b: WireBatch): Dense {
  const B = b.batchSize;
  const L = b.seqLen;
  const tokens = int32s(b.tokens);
  const S = b.segLength.length;
  if (b.segRow.length !== S || b.segOffset.length !== S)
    throw malformed(`seg_row/seg_offset/seg_length have ${b.segRow.length}/${b.segOffset.length}/${S} entries`);
  const inputIds = new Int32Array(B * L).fill(b.padId);
  const labels = new Int32Array(B * L).fill(IGNORE_INDEX);
  const positionIds = new Int32Array(B * L);
  const segmentIds = new Int32Array(B * L);
  const cuSeqlens = new Int32Array(S + 1);
  const dest = new Int32Array(S); // flattened [B * L] position of each segment's first token
  const order = [...Array(S).keys()].sort((x, y) => b.segRow[x]! - b.segRow[y]! || b.segOffset[x]! - b.segOffset[y]!);
  const ordinal = new Int32Array(S);
  let prevRow = -1;
  let prevEnd = 0;
  let n = 0;
  for (const i of order) {
    const row = b.segRow[i]!;
    const off = b.segOffset[i]!;
    if (row !== prevRow) [prevRow, prevEnd, n] = [row, 0, 0];
    if (row >= B || off + b.segLength[i]! > L) throw malformed(`segment ${i} lies outside the [${B}, ${L}] batch`);
    if (off < prevEnd) throw malformed(`segment ${i} overlaps the previous one in row ${row}`);
    ordinal[i] = ++n;
    prevEnd = off + b.segLength[i]!;
  }
  let start = 0;
  let maxSeqlen = 0;
  for (let i = 0; i < S; i++) {
    const len = b.segLength[i]!;
    if (start + len > tokens.length) throw malformed(`segment lengths exceed the ${tokens.length} tokens`);
    const at = b.segRow[i]! * L + b.segOffset[i]!;
    inputIds.set(tokens.subarray(start, start + len), at);
    segmentIds.fill(ordinal[i]!, at, at + len);
    positionIds.set(positions(len), at);
    dest[i] = at;
    start += len;
    cuSeqlens[i + 1] = start;
    maxSeqlen = Math.max(maxSeqlen, len);
  }
  if (start !== tokens.length) throw malformed(`segment lengths sum to ${start} but tokens holds ${tokens.length}`);
  if (b.lossSpans.length % 2 !== 0) throw malformed('loss_spans has an odd number of entries');
  for (let k = 0; k < b.lossSpans.length; k += 2) {
    let s0 = b.lossSpans[k]!;
    const s1 = b.lossSpans[k + 1]!;
    if (s0 > s1 || s1 > tokens.length)
      throw malformed(`loss span [${s0}, ${s1}) is reversed or beyond the ${tokens.length} tokens`);
    // A span is normally one turn's answer inside its segment: one block copy; a span running
    // over several segments is copied piece by piece.
    for (let i = s0 < s1 ? segmentAt(cuSeqlens, s0) : S; s0 < s1; i++) {
      const end = Math.min(s1, cuSeqlens[i + 1]!);
      labels.set(tokens.subarray(s0, end), dest[i]! + s0 - cuSeqlens[i]!);
      s0 = end;
    }
  }
  return { inputIds, labels, positionIds, segmentIds, cuSeqlens, maxSeqlen };
}

/** One segment of a wire batch by indices: its place in `tokens` and in the rows, its turns, its loss spans. */
export interface SegmentColumns {
  row: number;
  offset: number;
  length: number;
  /** Index of its first token in the flattened `tokens`. */
  start: number;
  taskIndex: number;
  /** Domain index; -1 when the batch has no domain column. */
  domainIndex: number;
  uuids: string[];
  turnTaskIndices: number[];
  /** [start, end) of each turn's supervised tokens, relative to the segment's first token. */
  loss: [number, number][];
  textTokens: number;
  audioTokens: number;
}

/**
 * Walks the per-segment columns: segment i holds the next `segLength[i]` tokens and the next
 * `segTurns[i]` uuids, turn tasks and loss-span pairs (one pair per turn). The one reading of
 * the columns: the client's batches and the tests' views of them both come from here. Throws
 * DATA_LOSS when the columns disagree.
 */
export function segmentColumns(b: WireBatch): SegmentColumns[] {
  const S = b.segLength.length;
  const turns = b.segTurns;
  const sum = turns.reduce((a, x) => a + x, 0);
  if (turns.length !== S || sum !== b.uuids.length || b.turnTask.length !== sum || b.segTask.length !== S) {
    throw malformed(
      `seg_turns (${turns.length} entries, sum ${sum}) does not match ${S} segments, ${b.uuids.length} uuids and ${b.turnTask.length} turn tasks`,
    );
  }
  if (b.lossSpans.length !== 2 * sum)
    throw malformed(`loss_spans has ${b.lossSpans.length} entries for ${sum} turns (one [start, end) pair per turn)`);
  const out: SegmentColumns[] = [];
  let start = 0;
  let j = 0;
  for (let i = 0; i < S; i++) {
    const n = turns[i]!;
    const length = b.segLength[i]!;
    const loss: [number, number][] = [];
    for (let k = j; k < j + n; k++) loss.push([b.lossSpans[2 * k]! - start, b.lossSpans[2 * k + 1]! - start]);
    out.push({
      row: b.segRow[i]!,
      offset: b.segOffset[i]!,
      length,
      start,
      taskIndex: b.segTask[i]!,
      domainIndex: b.segDomain[i] ?? -1,
      uuids: b.uuids.slice(j, j + n),
      turnTaskIndices: b.turnTask.slice(j, j + n),
      loss,
      textTokens: b.segTextTokens[i] ?? 0,
      audioTokens: b.segAudioTokens[i] ?? 0,
    });
    start += length;
    j += n;
  }
  return out;
}

const nameOf = (names: readonly string[], i: number): string => names[i] || `#${i}`;

/** Turns wire batches into {@link Batch}es, naming tasks and domains from the corpus info. */
export class BatchDecoder {
  readonly taskPaths: readonly string[];
  readonly domains: readonly string[];
  private readonly taskDomain: readonly number[];

  constructor(info?: CorpusInfo) {
    const paths: string[] = [];
    const taskDomain: number[] = [];
    for (const t of info?.tasks ?? []) {
      paths[t.index] = t.path;
      taskDomain[t.index] = info?.domains.indexOf(t.domain) ?? -1;
    }
    this.taskPaths = paths;
    this.domains = info?.domains ?? [];
    this.taskDomain = taskDomain;
  }

  decode(b: WireBatch): Batch {
    const out: Batch = {
      ...denseArrays(b),
      batchSize: b.batchSize,
      seqLen: b.seqLen,
      segments: this.segments(b),
      step: b.step,
      rank: b.rank,
      worldSize: b.worldSize,
      resumeToken: b.resumeToken,
      heldoutFingerprint: b.heldoutFingerprint,
      stats: this.stats(b.stats),
    };
    if (b.examples.length > 0) out.examples = b.examples.map((e) => this.example(e));
    if (b.taskDropped.length > 0) out.droppedAtOpen = this.droppedAtOpen(b);
    return out;
  }

  /** Per-segment metadata, named from the corpus info. */
  segments(b: WireBatch): SegmentInfo[] {
    return segmentColumns(b).map((c) => ({
      row: c.row,
      offset: c.offset,
      length: c.length,
      task: nameOf(this.taskPaths, c.taskIndex),
      taskIndex: c.taskIndex,
      domain: nameOf(this.domains, c.domainIndex >= 0 ? c.domainIndex : (this.taskDomain[c.taskIndex] ?? -1)),
      uuids: c.uuids,
      turnTasks: c.turnTaskIndices.map((t) => nameOf(this.taskPaths, t)),
      textTokens: c.textTokens,
      audioTokens: c.audioTokens,
    }));
  }

  /** Per-task and per-domain totals with target versus realized proportions. */
  stats(st: WireStats | null): BatchStats {
    const ex = st?.taskExamples ?? [];
    const total = ex.reduce((a, x) => a + x, 0);
    const tasks: Record<string, TaskStats> = {};
    const n = Math.max(this.taskPaths.length, ex.length, st?.taskTarget.length ?? 0);
    const dn = Math.max(this.domains.length, st?.domainExamples.length ?? 0);
    const dText = new Array<number>(dn).fill(0);
    const dAudio = new Array<number>(dn).fill(0);
    // Train streams carry shares since the last update and over the recent window (evaluation streams do not).
    const train = (st?.taskExamplesSinceUpdate?.length ?? 0) > 0;
    const share = (xs: readonly number[] | undefined): ((i: number) => number) => {
      const sum = (xs ?? []).reduce((a, x) => a + x, 0);
      return (i) => (sum ? (xs?.[i] ?? 0) / sum : 0);
    };
    const since = share(st?.taskExamplesSinceUpdate);
    const recent = share(st?.taskExamplesWindow);
    for (let t = 0; t < n; t++) {
      const examples = ex[t] ?? 0;
      const target = st?.taskTarget[t] ?? 0;
      const textTokens = st?.taskTextTokens[t] ?? 0;
      const audioTokens = st?.taskAudioTokens[t] ?? 0;
      const d = this.taskDomain[t] ?? -1;
      if (d >= 0) {
        dText[d] = (dText[d] ?? 0) + textTokens;
        dAudio[d] = (dAudio[d] ?? 0) + audioTokens;
      }
      if (examples > 0 || target > 0) {
        tasks[nameOf(this.taskPaths, t)] = {
          index: t,
          examples,
          textTokens,
          audioTokens,
          target,
          realized: total ? examples / total : 0,
          ...(train
            ? { realizedSinceUpdate: since(t), realizedRecent: recent(t), epoch: st?.taskEpochs?.[t] ?? 0 }
            : {}),
        };
      }
    }
    const dTotal = (st?.domainExamples ?? []).reduce((a, x) => a + x, 0);
    const domains: Record<string, DomainStats> = {};
    const dSince = share(st?.domainExamplesSinceUpdate);
    const dRecent = share(st?.domainExamplesWindow);
    for (let d = 0; d < dn; d++) {
      const examples = st?.domainExamples[d] ?? 0;
      domains[nameOf(this.domains, d)] = {
        examples,
        textTokens: dText[d] ?? 0,
        audioTokens: dAudio[d] ?? 0,
        target: st?.domainTarget[d] ?? 0,
        realized: dTotal ? examples / dTotal : 0,
        ...(train ? { realizedSinceUpdate: dSince(d), realizedRecent: dRecent(d) } : {}),
      };
      const seconds = st?.domainAudioSeconds?.[d];
      if (seconds !== undefined) domains[nameOf(this.domains, d)]!.audioSeconds = seconds;
    }
    const steps = train ? { sinceUpdateStep: st?.sinceUpdateStep ?? 0, windowStartStep: st?.windowStartStep ?? 0 } : {};
    return {
      examples: total,
      paddingTokens: st?.paddingTokens ?? 0,
      dropped: st?.dropped ?? 0,
      truncated: st?.truncated ?? 0,
      tasks,
      domains,
      ...steps,
    };
  }

  example(e: WireExample): EvalExample {
    return {
      uuid: e.uuid,
      task: nameOf(this.taskPaths, e.task),
      taskIndex: e.task,
      promptTokens: int32s(e.promptTokens),
      answerTokens: int32s(e.answerTokens),
      answerText: e.answerText,
      answerAudioIds: [...e.answerAudioIds],
    };
  }

  /** An evaluation stream's first batch: what of the set fits no row, by task path. */
  droppedAtOpen(b: WireBatch): DroppedAtOpen {
    const dropped: Record<string, number> = {};
    let totalDropped = 0;
    b.taskDropped.forEach((n, t) => {
      if (n === 0) return;
      dropped[nameOf(this.taskPaths, t)] = n;
      totalDropped += n;
    });
    return { dropped, totalDropped, fitSeqLen: b.droppedFitSeqLen };
  }

  /** A `StreamEnd` as the dataset's `summary`: per-task counts keyed by task path, and totals. */
  summarize(end: WireEnd): StreamSummary {
    const taskExamples: Record<string, number> = {};
    const totalTaskExamples: Record<string, number> = {};
    const n = Math.max(end.taskExamples.length, end.totalTaskExamples.length);
    for (let t = 0; t < n; t++) {
      const mine = end.taskExamples[t] ?? 0;
      const all = end.totalTaskExamples[t] ?? 0;
      if (mine === 0 && all === 0) continue;
      taskExamples[nameOf(this.taskPaths, t)] = mine;
      totalTaskExamples[nameOf(this.taskPaths, t)] = all;
    }
    const dropped: Record<string, number> = {};
    let totalDropped = 0;
    end.taskDropped.forEach((n, t) => {
      if (n === 0) return;
      dropped[nameOf(this.taskPaths, t)] = n;
      totalDropped += n;
    });
    return {
      reason: end.reason,
      examples: end.examples,
      totalExamples: end.totalExamples,
      taskExamples,
      totalTaskExamples,
      dropped,
      totalDropped,
      resumeToken: end.resumeToken,
    };
  }
}
