/**
 * Plain objects shaped like the proto messages (proto-loader's camelCase field names), produced
 * by the stream layer without any gRPC import.
 */
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
  taskDropped: number[];
  taskTruncated: number[];
  sinceUpdateStep: number;
  taskExamplesSinceUpdate: number[];
  domainExamplesSinceUpdate: number[];
  windowStartStep: number;
  taskExamplesWindow: number[];
  domainExamplesWindow: number[];
  taskEpochs: number[];
  /** Seconds of audio served per domain (all ranks); empty when the codec's frame rate is unknown. */
  domainAudioSeconds: number[];
}

export interface WireExample {
  uuid: string;
  task: number;
  promptTokens: Buffer;
  answerTokens: Buffer;
  answerText: string;
  answerAudioIds: string[];
}

export interface WireBatch {
  step: number;
  rank: number;
  worldSize: number;
  batchSize: number;
  seqLen: number;
  padId: number;
  tokens: Buffer;
  segRow: number[];
  segOffset: number[];
  segLength: number[];
  segTask: number[];
  segDomain: number[];
  segTextTokens: number[];
  segAudioTokens: number[];
  /** Codec frames per segment (not sent: /metrics turns them into audio seconds). */
  segAudioFrames: number[];
  segTurns: number[];
  uuids: string[];
  turnTask: number[];
  lossSpans: number[];
  resumeToken: Buffer;
  stats: WireStats;
  heldoutFingerprint: string;
  examples: WireExample[];
  totalSteps: number;
}

export interface WireEnd {
  taskExamples: number[];
  totalTaskExamples: number[];
  examples: number;
  totalExamples: number;
  resumeToken: Buffer;
  reason: 'complete' | 'max_batches' | 'shutdown';
  taskDropped: number[];
}

export type WireResponse = { batch: WireBatch } | { end: WireEnd };
