/**
 * Messages of `flanstream.v1` as @grpc/proto-loader delivers them (camelCase fields, 64-bit
 * integers as numbers, defaults filled in, `kind` naming the set oneof member), and the
 * decoded shapes the client hands out.
 */

export interface TaskInfo {
  index: number;
  /** Selector path `domain/major/minor`. */
  path: string;
  domain: string;
  major: string;
  minor: string;
  /** `"understanding"` or `"generation"`. */
  ug: string;
  trainRecords: number;
  devRecords: number;
  testRecords: number;
  textTokens: number;
  audioTokens: number;
  unseen: boolean;
}

export interface VocabLayout {
  tokenizer: string;
  tokenizerFingerprint: string;
  textVocabSize: number;
  padId: number;
  soaId: number;
  eoaId: number;
  imStartId: number;
  imEndId: number;
  eosId: number;
  /** Audio token = audioOffset + q * codebookSize + code. */
  audioOffset: number;
  codebooks: number;
  codebookSize: number;
  totalSize: number;
  /** Fills the holes of the delay layout (audioOffset + codebooks × codebookSize). */
  audioPadId: number;
  /** Codec frames per second (0 = unknown) and codec name ("" = unknown). */
  frameRate: number;
  codec: string;
}

export interface HeldoutSetInfo {
  name: string;
  fingerprint: string;
  selectors: string[];
  unseenFlag: boolean;
  excludeSharedAudio: boolean;
  /** Resolved task paths (cluster rule and unseen flag applied). */
  tasks: string[];
  /** False when the set names tasks this index lacks (a corpus of one domain); using it fails with FAILED_PRECONDITION. */
  available: boolean;
  /** What an unavailable set names that the index lacks. */
  missing: string[];
  /** Held-out source datasets (NN_Dataset folders). */
  datasets: string[];
  /** N of the text guard; 0 = off. */
  excludeOverlappingText: number;
  /** Train records each guard removes, by held-out task (only from `corpusInfo({ contamination: true })`). */
  contamination: GuardRemoval[];
}

/** Train records one guard ("dataset" | "audio" | "text") removes because of one held-out task (or `dataset NN_Name`). */
export interface GuardRemoval {
  guard: string;
  heldout: string;
  removed: number;
  examples: { train: string; heldout: string }[];
}

/** A source dataset (NN_Dataset folder) and its records per task. */
export interface DatasetInfo {
  name: string;
  tasks: { task: string; trainRecords: number; devRecords: number; testRecords: number }[];
}

/** A named mixture that weights selectors matching no task of this index. */
export interface UnavailableMixture {
  name: string;
  missing: string[];
}

/** `GetCorpusInfo`'s answer. */
export interface CorpusInfo {
  indexFingerprint: string;
  records: number;
  tasks: TaskInfo[];
  vocab: VocabLayout;
  heldoutSets: HeldoutSetInfo[];
  defaultHeldout: string;
  /** Names usable as a mixture (the available ones). */
  mixtures: string[];
  /** Named mixtures this index cannot serve, with the selectors that match no task. */
  unavailableMixtures: UnavailableMixture[];
  /** Source datasets, usable in a held-out set's `datasets`. */
  datasets: DatasetInfo[];
  /** Domain index → name, as in segment domain columns. */
  domains: string[];
  quarantined: number;
}

export interface WireStats {
  taskExamples: number[];
  taskTextTokens: number[];
  taskAudioTokens: number[];
  taskTarget: number[];
  domainExamples: number[];
  domainTarget: number[];
  paddingTokens: number;
  dropped: number;
  truncated: number;
  /** Train streams (see the proto's Stats): counts since the last update and over the recent window; epochs. */
  sinceUpdateStep?: number;
  taskExamplesSinceUpdate?: number[];
  domainExamplesSinceUpdate?: number[];
  windowStartStep?: number;
  taskExamplesWindow?: number[];
  domainExamplesWindow?: number[];
  taskEpochs?: number[];
  /** Seconds of audio served per domain; empty when the index has no frame rate. */
  domainAudioSeconds?: number[];
}

export interface WireExample {
  uuid: string;
  task: number;
  promptTokens: Uint8Array;
  answerTokens: Uint8Array;
  answerText: string;
  answerAudioIds: string[];
}

/** A `Batch` on the wire: tokens of all segments back to back, per-segment columns, loss spans. */
export interface WireBatch {
  step: number;
  rank: number;
  worldSize: number;
  batchSize: number;
  seqLen: number;
  padId: number;
  tokens: Uint8Array;
  segRow: number[];
  segOffset: number[];
  segLength: number[];
  segTask: number[];
  segDomain: number[];
  segTextTokens: number[];
  segAudioTokens: number[];
  segTurns: number[];
  uuids: string[];
  turnTask: number[];
  lossSpans: number[];
  resumeToken: Uint8Array;
  stats: WireStats | null;
  heldoutFingerprint: string;
  examples: WireExample[];
}

export interface WireEnd {
  taskExamples: number[];
  totalTaskExamples: number[];
  examples: number;
  totalExamples: number;
  resumeToken: Uint8Array;
  /** `"complete"`, `"max_batches"` or `"shutdown"`. */
  reason: string;
}

export interface WireResponse {
  kind?: 'batch' | 'end';
  batch?: WireBatch | null;
  end?: WireEnd | null;
}

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
}

/** A finished stream's final counts (`dataset.summary`), keyed by task path. */
export interface StreamSummary {
  reason: string;
  examples: number;
  totalExamples: number;
  taskExamples: Record<string, number>;
  totalTaskExamples: Record<string, number>;
  resumeToken: Uint8Array;
}
