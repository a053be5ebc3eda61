/**
 * Messages of `flanstream.v1` as @grpc/proto-loader delivers them (camelCase fields, 64-bit
 * integers as numbers, defaults filled in, `kind` naming the set oneof member): the types
 * generated from the .proto (proto/generated, `npm run gen:proto-types`), under the client's
 * names; below them, the decoded shapes the client hands out.
 */

export type { TaskInfo__Output as TaskInfo } from '../../proto/generated/flanstream/v1/TaskInfo.js';
export type { VocabLayout__Output as VocabLayout } from '../../proto/generated/flanstream/v1/VocabLayout.js';
export type { HeldoutSetInfo__Output as HeldoutSetInfo } from '../../proto/generated/flanstream/v1/HeldoutSetInfo.js';
export type { GuardRemoval__Output as GuardRemoval } from '../../proto/generated/flanstream/v1/GuardRemoval.js';
export type { DatasetInfo__Output as DatasetInfo } from '../../proto/generated/flanstream/v1/DatasetInfo.js';
export type { UnavailableMixture__Output as UnavailableMixture } from '../../proto/generated/flanstream/v1/UnavailableMixture.js';
export type { CorpusInfo__Output as CorpusInfo } from '../../proto/generated/flanstream/v1/CorpusInfo.js';
export type { Stats__Output as WireStats } from '../../proto/generated/flanstream/v1/Stats.js';
export type { EvalExample__Output as WireExample } from '../../proto/generated/flanstream/v1/EvalExample.js';
export type { Batch__Output as WireBatch } from '../../proto/generated/flanstream/v1/Batch.js';
export type { StreamEnd__Output as WireEnd } from '../../proto/generated/flanstream/v1/StreamEnd.js';
export type { StreamResponse__Output as WireResponse } from '../../proto/generated/flanstream/v1/StreamResponse.js';

/** One segment (a conversation) of a decoded batch. */
export interface SegmentInfo {
  row: number;
  offset: number;
  length: number;
  /** Task path of the first turn. */
  task: string;
  taskIndex: number;
  domain: string;
  /** One per turn. */
  uuids: string[];
  turnTasks: string[];
  textTokens: number;
  audioTokens: number;
}

export interface TaskStats {
  index: number;
  examples: number;
  textTokens: number;
  audioTokens: number;
  /** Target proportion of examples under the current mixture. */
  target: number;
  realized: number;
  /** Train streams: share since the last mixture update took effect, and over the recent window. */
  realizedSinceUpdate?: number;
  realizedRecent?: number;
  /** Train streams: completed passes over the task's train records. */
  epoch?: number;
}

export interface DomainStats {
  examples: number;
  textTokens: number;
  audioTokens: number;
  target: number;
  realized: number;
  realizedSinceUpdate?: number;
  realizedRecent?: number;
  /** Seconds of audio served (codec frames / frame rate); absent when the index has no frame rate. */
  audioSeconds?: number;
}

/** Global-stream totals so far (all ranks). */
export interface BatchStats {
  examples: number;
  paddingTokens: number;
  dropped: number;
  truncated: number;
  /** By task path; tasks with examples or a positive target. */
  tasks: Record<string, TaskStats>;
  domains: Record<string, DomainStats>;
  /** Train streams: the step the last mixture update took effect at (0 before any) and the recent window's first step. */
  sinceUpdateStep?: number;
  windowStartStep?: number;
}

/** A `packing: "examples"` item for generation-based evaluation. */
export interface EvalExample {
  uuid: string;
  task: string;
  taskIndex: number;
  /** Prompt tokens, ending at the assistant header. */
  promptTokens: Int32Array;
  /** The reference answer and its end marker. */
  answerTokens: Int32Array;
  answerText: string;
  answerAudioIds: string[];
}

/** A decoded batch: dense [B, L] arrays (row-major, `B * L` entries) and per-segment metadata. */
export interface Batch {
  inputIds: Int32Array;
  /** The token itself on supervised positions (unshifted), -100 elsewhere. */
  labels: Int32Array;
  /** 0, 1, … restarting for every segment; 0 on padding. */
  positionIds: Int32Array;
  /** 1, 2, … per segment within a row; 0 on padding. */
  segmentIds: Int32Array;
  /** [S + 1]: 0 then cumulative segment lengths. */
  cuSeqlens: Int32Array;
  maxSeqlen: number;
  batchSize: number;
  seqLen: number;
  segments: SegmentInfo[];
  /** Global step. */
  step: number;
  rank: number;
  worldSize: number;
  /** Continues the stream right after this batch. */
  resumeToken: Uint8Array;
  heldoutFingerprint: string;
  stats: BatchStats;
  examples?: EvalExample[];
  /** Evaluation streams, on the first batch of every call: the set's items that fit no row. */
  droppedAtOpen?: DroppedAtOpen;
}

/** What an evaluation stream says when it opens of the set's items that fit no row of seqLen (never served). */
export interface DroppedAtOpen {
  /** By task path (whole set, all ranks); the end's `summary.dropped` repeats them. */
  dropped: Record<string, number>;
  totalDropped: number;
  /** The smallest seqLen that fits every dropped item whole (0: none dropped). */
  fitSeqLen: number;
}

/** A finished stream's final counts (`dataset.summary`), keyed by task path. */
export interface StreamSummary {
  reason: string;
  examples: number;
  totalExamples: number;
  taskExamples: Record<string, number>;
  totalTaskExamples: Record<string, number>;
  /** Items of the whole set that fit no row of seqLen even truncated, never served, by task path (whole set, all ranks). */
  dropped: Record<string, number>;
  totalDropped: number;
  resumeToken: Uint8Array;
}
